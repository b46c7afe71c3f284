"""Swarm benchmark (issue 5): every peer a host of its own, capped uplinks, four ways to ship.

Each run builds a small private network out of Linux network namespaces and tears it down
again: a bridge in a namespace of its own, and one namespace per host (tracker, origin, N
leechers), each joined to the bridge by a veth pair whose host end has an address in
``--subnet`` (default 10.213.0.0/24) and a ``tc tbf`` cap on its egress (``--cap-mbit``,
``--seed-cap-mbit`` for the origin). No namespace has a default route, IPv6 is off in all of
them, and nothing is attached to the root namespace: no packet leaves the machine.

On that network, for every N in ``--n`` and every way in ``--ways``, it times from the start
until the last leecher holds every byte:

- ``torrentds``: ``torrentds seed`` on the origin, N × ``torrentds get`` (time: each
  leecher's ``completed`` event, sent after every shard's sha256 is checked);
- ``aria2c``: aria2c as seeder and leechers, DHT and LPD off, PEX on (time: the
  ``--on-bt-download-complete`` hook, run after every piece's sha1 is checked);
- ``http``: nginx on the origin, N concurrent ``curl`` downloads of every file (time: exit);
- ``webseed``: no seeder at all, the torrent's BEP 19 web seed (nginx on the origin) is
  the only source; N × ``torrentds get``.

Peers meet through Debian's (whitelist-only) opentracker on a host of its own. The dataset
is ``--size-mb`` MiB of random 1 MiB samples written as WebDataset tar shards of
``--shard-mb`` MiB, adopted by ``torrentds create``. After each run every leecher's copy is
checked with ``sha256sum -c SHA256SUMS`` (and its manifest compared with the origin's); a run
that does not verify does not count.

Reported per way and N (medians over ``--repeat`` runs): the time T; the Kumar–Ross lower
bound T_min = max(F/u_s, N·F/(u_s + Σu_i)); T/T_min; what the origin's interface sent
(``tx_bytes`` of its veth, headers included) ÷ the dataset size; the origin's payload where
it says (torrentds seed's ``uploaded``, nginx's ``$body_bytes_sent``); CPU seconds (utime +
stime of every process of the way, origin and leechers, from the start to the last
completion); and for torrentds the time to the first verified shard against the time to
complete. Also the HTTP bound N·F/u_s, a PNG plot (``--plot``) and the targets of issue 5.

Variants (torrentds ways only), all options of torrentds itself: ``--no-slice`` (a plain
``get``), ``--ranked`` (``get --rank i --world-size N``), ``--window`` (``get --window``) and
``--seed-max-upload`` (``seed --max-upload``). To try an engine setting, edit
``engine.lan_settings()`` in the working tree and compare with a run of ``--rev HEAD``.
``--ttfs`` runs torrentds only and adds a per-leecher table: when its first, 25%, 50%, 75% and
all shards were verified.

Cleanup: every process runs in its own session; on exit, error, Ctrl-C, SIGTERM or SIGHUP
all are stopped, every process still inside one of the namespaces is killed, and every
namespace is deleted. The script then checks that ``ip netns list`` holds none of its
namespaces and no process of its sessions is alive, and exits 3 naming what is left if not.
Needs root. Run::

    sudo .venv/bin/python benchmarks/swarm.py [--n 1 3 6] [--repeat 3] [--size-mb 512]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import quote, quote_from_bytes

from harness.verify import verify_copy

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
WAYS = ("torrentds", "aria2c", "http", "webseed")
WAY_LABELS = {
    "torrentds": "torrentds (seed + get)",
    "aria2c": "aria2c (seeder + leechers)",
    "http": "HTTP (nginx, N × curl)",
    "webseed": "torrentds, web seed only (nginx)",
}
BT_PORT = 6881
TRACKER_PORT = 6969
HTTP_PORT = 8080
TRACKER_OCTET = 2
ORIGIN_OCTET = 3
FIRST_LEECHER_OCTET = 11
TORRENTDS_NET = ["--no-dht", "--no-lsd", "--no-upnp", "--json"]
# aria2c: only our tracker, no DHT, no LPD; PEX on (peers learn each other as in torrentds).
ARIA2C_FLAGS = [
    "--no-conf=true",
    "--disable-ipv6=true",
    "--async-dns=false",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=true",
    "--bt-exclude-tracker=*",
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=warn",
    "--log-level=notice",
    "--file-allocation=falloc",
    "--auto-save-interval=0",
]
HOOK = """#!/bin/sh
# aria2c --on-bt-download-complete: when this leecher had every piece (epoch seconds).
date +%s.%N > "$BENCH_DONE_FILE.tmp" && mv "$BENCH_DONE_FILE.tmp" "$BENCH_DONE_FILE"
"""

# Every session (= process group leader) this script started, for the final leftover check.
SESSIONS: set[int] = set()


def log(msg: str) -> None:
    print(f"[swarm] {msg}", file=sys.stderr, flush=True)


def sh(cmd: Sequence[str], timeout: float = 30, check: bool = True) -> str:
    """Run a short command (bounded); its stdout. Raises with stderr when ``check`` fails."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str, cmd: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------- network


@dataclass(frozen=True)
class Host:
    role: str
    ns: str
    ip: str
    dev: str  # its veth end, inside ns
    cap_mbit: float


class Topology:
    """A bridge namespace and one namespace per host, each with a capped veth into the bridge."""

    def __init__(self, prefix: str, subnet: str, mtu: int) -> None:
        self.prefix = prefix
        self.subnet = subnet  # first three octets, e.g. "10.213.0"
        self.mtu = mtu
        self.bridge = f"{prefix}br"
        self.created: list[str] = []
        self.hosts: dict[str, Host] = {}

    def _add_ns(self, ns: str) -> None:
        sh(["ip", "netns", "add", ns])
        self.created.append(ns)
        # No IPv6 at all (no link-local addresses, no multicast listener reports).
        sh(
            in_ns(
                ns,
                [
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )
        )
        sh(in_ns(ns, ["ip", "link", "set", "lo", "up"]))

    def build_bridge(self) -> None:
        self._add_ns(self.bridge)
        sh(in_ns(self.bridge, ["ip", "link", "add", "br0", "type", "bridge"]))
        sh(in_ns(self.bridge, ["ip", "link", "set", "br0", "up"]))

    def add_host(self, role: str, octet: int, cap_mbit: float) -> Host:
        ns = f"{self.prefix}{role}"
        self._add_ns(ns)
        port = f"p{octet}"
        # Both ends are created directly in their namespaces: nothing touches the root one.
        sh(
            [
                *("ip", "link", "add", "eth0", "netns", ns, "mtu", str(self.mtu), "type", "veth"),
                *("peer", "name", port, "netns", self.bridge, "mtu", str(self.mtu)),
            ]
        )
        sh(in_ns(self.bridge, ["ip", "link", "set", port, "master", "br0"]))
        sh(in_ns(self.bridge, ["ip", "link", "set", port, "up"]))
        ip = f"{self.subnet}.{octet}"
        sh(in_ns(ns, ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"]))
        sh(in_ns(ns, ["ip", "link", "set", "eth0", "up"]))
        sh(
            in_ns(
                ns,
                [
                    *("tc", "qdisc", "add", "dev", "eth0", "root", "tbf"),
                    *("rate", f"{cap_mbit:g}mbit", "burst", "32kbit", "latency", "50ms"),
                ],
            )
        )
        routes = sh(in_ns(ns, ["ip", "route", "show", "default"])).strip()
        if routes:
            raise RuntimeError(f"{ns} has a default route: {routes}")
        host = Host(role, ns, ip, "eth0", cap_mbit)
        self.hosts[role] = host
        return host

    def tx_bytes(self, host: Host) -> int:
        path = f"/sys/class/net/{host.dev}/statistics/tx_bytes"
        return int(sh(in_ns(host.ns, ["cat", path])).strip())

    def destroy(self) -> list[str]:
        """Kill whatever still runs inside the namespaces, delete them; problems found."""
        problems: list[str] = []
        for ns in reversed(self.created):
            for _ in range(50):
                try:
                    pids = [int(p) for p in sh(["ip", "netns", "pids", ns], 10).split()]
                except (RuntimeError, subprocess.TimeoutExpired, ValueError):
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                reap_any()
                time.sleep(0.1)
            try:
                sh(["ip", "netns", "del", ns], 10)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{ns}: {exc}")
        self.created.clear()
        return problems


def our_namespaces(prefix: str) -> list[str]:
    out = sh(["ip", "netns", "list"], 10, check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


# --------------------------------------------------------------------------- processes


def reap_any() -> None:
    """Reap exited children that nobody waits for (bounded, never blocks)."""
    for _ in range(100):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session_ticks(sids: set[int]) -> dict[int, int]:
    """utime+stime+cutime+cstime of every live process, summed per session in ``sids``.

    A reaped child's time sits in its parent's cutime/cstime, so each process is counted once.
    """
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields is None or len(fields) < 15 or fields[0] == "Z":
            continue
        sid = int(fields[3])
        if sid in sids:
            out[sid] = out.get(sid, 0) + sum(int(f) for f in fields[11:15])
    return out


def session_members(sids: set[int]) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields is not None and len(fields) > 3 and int(fields[3]) in sids:
            try:
                comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
            except OSError:
                comm = "?"
            found.append(f"pid {entry.name} ({comm}, state {fields[0]}, session {fields[3]})")
    return found


class Proc:
    """One process started inside a namespace, in a session of its own."""

    def __init__(
        self,
        label: str,
        ns: str,
        cmd: Sequence[str],
        logdir: Path,
        env: dict[str, str] | None = None,
        events: bool = False,
    ) -> None:
        self.label = label
        self.cmd = list(cmd)
        self.stderr_path = logdir / f"{label}.err"
        self.stdout_path = logdir / f"{label}.out"
        self.events: list[dict[str, Any]] = []
        self.rusage_s = 0.0  # CPU seconds of the process (and its reaped children) once reaped
        self.ended: float | None = None
        self._lock = threading.Lock()
        err = self.stderr_path.open("wb")
        out: IO[bytes] | int = subprocess.PIPE if events else self.stdout_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                in_ns(ns, cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        finally:
            err.close()
            if not isinstance(out, int):
                out.close()
        SESSIONS.add(self.popen.pid)
        self.pid = self.popen.pid
        if events:
            threading.Thread(target=self._read_events, daemon=True).start()

    def _read_events(self) -> None:
        assert self.popen.stdout is not None
        with self.stdout_path.open("wb") as raw:
            for line in self.popen.stdout:
                raw.write(line)
                with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        with self._lock:
                            self.events.append(event)

    def find(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            for event in self.events:
                if event.get("event") == kind:
                    return event
        return None

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == kind]

    def first_time(self, kind: str) -> float | None:
        event = self.find(kind)
        return float(event["time"]) if event is not None else None

    def poll(self) -> int | None:
        """Reap with wait4 (keeps the CPU time) if it exited; its exit code or None."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.popen.returncode = -1
            self.ended = time.time()
            return -1
        if pid == 0:
            return None
        self.ended = time.time()
        self.rusage_s = ru.ru_utime + ru.ru_stime
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        return self.popen.returncode

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def tail(self, n: int = 600) -> str:
        text = ""
        for path in (self.stderr_path, self.stdout_path):
            with contextlib.suppress(OSError):
                text += path.read_bytes()[-n:].decode(errors="replace")
        return text.strip()


class Procs:
    """The processes of one run; ``stop_all`` ends them all (SIGTERM, then SIGKILL, bounded)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.items: list[Proc] = []

    def start(
        self,
        label: str,
        ns: str,
        cmd: Sequence[str],
        env: dict[str, str] | None = None,
        events: bool = False,
    ) -> Proc:
        proc = Proc(label, ns, cmd, self.logdir, env, events)
        self.items.append(proc)
        return proc

    def stop_all(self, timeout: float = 15.0) -> None:
        for proc in self.items:
            if proc.poll() is None:
                proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in self.items):
            time.sleep(0.05)
        for proc in self.items:
            proc.signal(signal.SIGKILL)  # the whole group: also children a parent left behind
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.poll() is None for p in self.items):
            time.sleep(0.05)


def cpu_seconds(procs: Sequence[Proc]) -> dict[int, float]:
    """CPU seconds so far of each process's session (reaped leaders: their wait4 rusage)."""
    ticks = session_ticks({p.pid for p in procs})
    return {p.pid: p.rusage_s + ticks.get(p.pid, 0) / CLK_TCK for p in procs}


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Dataset:
    folder: Path  # the origin's copy: ORIGIN/bench
    torrent: Path  # trackers only
    webseed_torrent: Path  # same info dict, plus the origin's nginx as BEP 19 web seed
    infohash: str
    name: str
    size: int
    pieces: int
    piece_size: int
    shards: int
    files: list[tuple[str, int]]


def write_shards(folder: Path, size_mb: int, shard_mb: int, seed: int) -> int:
    """``size_mb`` 1 MiB random samples (+ a label) as WebDataset tars of ``shard_mb``."""
    rng = random.Random(seed)
    split = folder / "train"
    split.mkdir(parents=True)
    shards = math.ceil(size_mb / shard_mb)
    sample = 0
    for s in range(shards):
        with tarfile.open(split / f"train-{s:06d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for _ in range(min(shard_mb, size_mb - sample)):
                key = f"{sample:06d}"
                for ext, data in (
                    ("bin", rng.randbytes(MIB)),
                    ("cls", str(sample % 10).encode()),
                ):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
                sample += 1
    return shards


def torrentds_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "torrentds", *args]


def make_dataset(work: Path, args: argparse.Namespace, tracker_url: str, web_url: str) -> Dataset:
    origin = work / "origin"
    folder = origin / "bench"
    shards = write_shards(folder, args.size_mb, args.shard_mb, args.seed)
    created: dict[str, Any] = {}
    for out, extra in (
        (work / "bench.torrent", []),
        (work / "bench-webseed.torrent", ["--web-seed", web_url, "--no-check-web-seeds"]),
    ):
        text = sh(
            torrentds_cmd(
                *("create", str(folder), "--no-default-trackers", "--tracker", tracker_url),
                *(*extra, "-o", str(out), "--json"),
            ),
            timeout=600,
        )
        created[out.name] = json.loads(text)
    a, b = created["bench.torrent"], created["bench-webseed.torrent"]
    if a["infohash"] != b["infohash"]:
        raise RuntimeError("the web-seed torrent has a different info-hash")
    info = json.loads(sh(torrentds_cmd("info", str(work / "bench.torrent"), "--json")))
    return Dataset(
        folder=Path(a["dataset_dir"]),
        torrent=work / "bench.torrent",
        webseed_torrent=work / "bench-webseed.torrent",
        infohash=str(a["infohash"]),
        name=str(a["name"]),
        size=int(a["bytes"]),
        pieces=int(a["pieces"]),
        piece_size=int(a["piece_size"]),
        shards=shards,
        files=[(str(p), int(s)) for p, s in info["files"]],
    )


# --------------------------------------------------------------------------- tracker, nginx


def _quote(infohash: str) -> str:
    return quote_from_bytes(bytes.fromhex(infohash), safe="")


class Tracker:
    """Debian's whitelist-only opentracker on its own host; the whitelist is written first."""

    def __init__(self, host: Host, workdir: Path) -> None:
        self.host = host
        self.dir = workdir
        self.base = f"http://{host.ip}:{TRACKER_PORT}"
        self.url = f"{self.base}/announce"

    def get(self, url: str) -> bytes | None:
        done = subprocess.run(
            in_ns(self.host.ns, ["curl", "-s", "--max-time", "2", url]),
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    def start(self, procs: Procs, infohash: str) -> Proc:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)  # it chroots here and drops root for "nobody": let it read
        whitelist = self.dir / "whitelist.txt"
        whitelist.write_text(infohash + "\n")
        whitelist.chmod(0o644)
        proc = procs.start(
            "opentracker",
            self.host.ns,
            [
                *("opentracker", "-i", self.host.ip, "-p", str(TRACKER_PORT)),
                *("-P", str(TRACKER_PORT), "-d", str(self.dir), "-w", "whitelist.txt"),
            ],
        )

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"opentracker exited: {proc.tail()}")
            return self.get(f"{self.base}/stats") is not None

        wait_until(answers, 15, "opentracker to listen")
        # A "started" announce is refused for a hash not whitelisted; the probe peer is
        # taken out again with "stopped", so no leecher is handed a dead address.
        query = (
            f"info_hash={_quote(infohash)}&peer_id=-BENCH0-000000000000&port=1"
            "&uploaded=0&downloaded=0&left=1&compact=1"
        )

        def accepted() -> bool:
            body = self.get(f"{self.url}?{query}&event=started")
            if body is not None and b"failure reason" not in body:
                return True
            proc.signal(signal.SIGHUP)  # reload the whitelist
            return False

        wait_until(accepted, 15, f"opentracker to accept {infohash}", every=0.2)
        self.get(f"{self.url}?{query}&event=stopped")
        wait_until(lambda: self.scrape(infohash) == (0, 0), 10, "the probe peer to leave")
        return proc

    def scrape(self, infohash: str) -> tuple[int, int]:
        body = self.get(f"{self.base}/scrape?info_hash={_quote(infohash)}") or b""
        complete = re.search(rb"8:completei(\d+)e", body)
        incomplete = re.search(rb"10:incompletei(\d+)e", body)
        return (
            int(complete.group(1)) if complete else 0,
            int(incomplete.group(1)) if incomplete else 0,
        )


def start_nginx(procs: Procs, host: Host, root: Path, workdir: Path) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
user root;
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format bytes '$body_bytes_sent $status';
    access_log {workdir}/access.log bytes;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen {host.ip}:{HTTP_PORT};
        root {root};
        location / {{ }}
    }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return procs.start("nginx", host.ns, [nginx, "-c", str(conf), "-p", str(workdir)])


def nginx_payload(workdir: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for line in (workdir / "access.log").read_text().splitlines():
            with contextlib.suppress(ValueError, IndexError):
                total += int(line.split()[0])
    return total


# --------------------------------------------------------------------------- runs


@dataclass
class RunResult:
    way: str
    n: int
    times: list[float] = field(default_factory=list)  # each leecher's completion, s from start
    first_shard: list[float] = field(default_factory=list)  # torrentds: first verified shard
    shard_times: list[list[float]] = field(default_factory=list)  # torrentds: every shard
    egress: int = 0  # bytes the origin's interface sent, start → last completion
    payload: int | None = None  # payload bytes the origin reports having sent
    cpu: float = 0.0  # CPU seconds, origin and leechers, start → last completion
    origin_cpu: float = 0.0
    load1: float = 0.0  # the machine's 1-minute load average when the run started
    error: str | None = None

    @property
    def t(self) -> float:
        return max(self.times) if self.times else math.nan


@dataclass
class Ctx:
    args: argparse.Namespace
    work: Path
    ds: Dataset
    prefix: str
    hook: Path

    def ip(self, octet: int) -> str:
        return f"{self.args.subnet}.{octet}"


def torrentds_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def start_origin(
    ctx: Ctx, way: str, procs: Procs, origin: Host, tracker: Tracker, run_dir: Path
) -> Proc:
    ds, args = ctx.ds, ctx.args
    if way == "torrentds":
        cmd = [
            *torrentds_cmd(),
            *("seed", str(ds.folder), str(ds.torrent), "--skip-check"),
            *("--listen", f"{origin.ip}:{BT_PORT}", *TORRENTDS_NET),
        ]
        if args.seed_max_upload:
            cmd += ["--max-upload", args.seed_max_upload]
        return procs.start("seeder", origin.ns, cmd, env=torrentds_env(), events=True)
    if way == "aria2c":
        # -V hashes the origin's files (before the clock starts), then it seeds them forever.
        return procs.start(
            "seeder",
            origin.ns,
            [
                "aria2c",
                *ARIA2C_FLAGS,
                f"--interface={origin.ip}",
                f"--listen-port={BT_PORT}",
                f"--bt-tracker={tracker.url}",
                f"--log={run_dir / 'seeder.log'}",
                f"--stop-with-process={os.getpid()}",
                f"--dir={ds.folder.parent}",
                *("--check-integrity=true", "--bt-hash-check-seed=true", "--seed-ratio=0.0"),
                str(ds.torrent),
            ],
        )
    return start_nginx(procs, origin, ds.folder.parent, run_dir / "nginx")


def wait_origin(ctx: Ctx, way: str, proc: Proc, tracker: Tracker, origin: Host) -> None:
    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"origin ({way}) exited with {proc.popen.returncode}: {proc.tail()}")

    if way in ("torrentds", "aria2c"):

        def seeding() -> bool:
            alive()
            return tracker.scrape(ctx.ds.infohash)[0] >= 1

        wait_until(seeding, ctx.args.ready_timeout, f"the {way} seeder to announce")
        return
    url = f"http://{origin.ip}:{HTTP_PORT}/{ctx.ds.name}/torrentds.json"

    def serving() -> bool:
        alive()
        return tracker.get(url) is not None

    wait_until(serving, ctx.args.ready_timeout, "nginx to serve")


class Leecher:
    """One leecher host's process and how to tell that it is done."""

    def __init__(self, way: str, proc: Proc, host: Host, folder: Path, mark: Path) -> None:
        self.way = way
        self.proc = proc
        self.host = host
        self.folder = folder  # where its copy of the dataset lands
        self.mark = mark  # aria2c's completion hook writes here

    def done_at(self) -> float | None:
        if self.way in ("torrentds", "webseed"):
            return self.proc.first_time("completed")
        if self.way == "aria2c":
            with contextlib.suppress(OSError, ValueError):
                return float(self.mark.read_text().strip())
            return None
        code = self.proc.poll()
        return self.proc.ended if code == 0 else None

    def failure(self) -> str | None:
        code = self.proc.poll()
        if code is None or (code == 0 and self.done_at() is not None):
            return None
        return f"{self.proc.label} exited with {code}: {self.proc.tail()}"


def start_leecher(
    ctx: Ctx, way: str, procs: Procs, i: int, host: Host, run_dir: Path, n: int
) -> Leecher:
    ds, args = ctx.ds, ctx.args
    home = run_dir / f"leecher{i}"
    home.mkdir(parents=True)
    folder = home / ds.name
    mark = run_dir / f"done{i}"
    label = f"leecher{i}"
    if way in ("torrentds", "webseed"):
        torrent = ds.torrent if way == "torrentds" else ds.webseed_torrent
        cmd = [
            *torrentds_cmd(),
            *("get", str(torrent), "-d", str(home), "--seed-hours", "inf"),
            *("--no-default-trackers", "--listen", f"{host.ip}:{BT_PORT}", *TORRENTDS_NET),
        ]
        if args.window is not None:
            cmd += ["--window", str(args.window)]
        if args.ranked:
            cmd += ["--rank", str(i), "--world-size", str(n)]
        elif not args.no_slice:
            cmd += ["--slice", f"{i}/{n}"]
        proc = procs.start(label, host.ns, cmd, env=torrentds_env(), events=True)
    elif way == "aria2c":
        env = {**os.environ, "BENCH_DONE_FILE": str(mark)}
        proc = procs.start(
            label,
            host.ns,
            [
                "aria2c",
                *ARIA2C_FLAGS,
                f"--interface={host.ip}",
                f"--listen-port={BT_PORT}",
                f"--bt-tracker=http://{ctx.ip(TRACKER_OCTET)}:{TRACKER_PORT}/announce",
                f"--log={run_dir / f'{label}.log'}",
                f"--stop-with-process={os.getpid()}",
                f"--dir={home}",
                "--seed-ratio=0.0",
                "--seed-time=1440",
                f"--on-bt-download-complete={ctx.hook}",
                str(ds.torrent),
            ],
            env=env,
        )
    else:
        base = f"http://{ctx.ip(ORIGIN_OCTET)}:{HTTP_PORT}/{quote(ds.name)}/"
        pairs: list[str] = []
        for path, _size in ds.files:
            pairs += ["-o", str(folder / path), base + quote(path)]
        proc = procs.start(
            label,
            host.ns,
            [
                *("curl", "--fail", "--silent", "--show-error", "--create-dirs"),
                *("--max-time", str(int(args.timeout)), *pairs),
            ],
        )
    return Leecher(way, proc, host, folder, mark)


def run_once(ctx: Ctx, way: str, n: int, run_dir: Path) -> RunResult:
    args, ds = ctx.args, ctx.ds
    result = RunResult(way, n, load1=os.getloadavg()[0])
    topo = Topology(ctx.prefix, args.subnet, args.mtu)
    procs = Procs(run_dir)
    try:
        topo.build_bridge()
        trk = topo.add_host("trk", TRACKER_OCTET, args.cap_mbit)
        origin = topo.add_host("org", ORIGIN_OCTET, args.seed_cap_mbit)
        hosts = [topo.add_host(f"l{i}", FIRST_LEECHER_OCTET + i, args.cap_mbit) for i in range(n)]
        tracker = Tracker(trk, run_dir / "opentracker")
        tracker.start(procs, ds.infohash)
        origin_proc = start_origin(ctx, way, procs, origin, tracker, run_dir)
        wait_origin(ctx, way, origin_proc, tracker, origin)
        time.sleep(0.5)  # let the origin settle (its first announce reply, nginx's accept)
        cpu0 = cpu_seconds([origin_proc])[origin_proc.pid]
        tx0 = topo.tx_bytes(origin)
        start = time.time()
        leechers = [
            start_leecher(ctx, way, procs, i, h, run_dir, len(hosts)) for i, h in enumerate(hosts)
        ]
        deadline = time.monotonic() + args.timeout
        while True:
            done = [lch.done_at() for lch in leechers]
            if all(d is not None for d in done):
                break
            failed = [f for lch in leechers if (f := lch.failure()) is not None]
            if failed:
                result.error = failed[0][:800]
                return result
            if origin_proc.poll() is not None:
                result.error = f"origin exited with {origin_proc.popen.returncode}"
                return result
            if time.monotonic() > deadline:
                left = sum(d is None for d in done)
                result.error = f"{left} of {n} leechers not done after {args.timeout:.0f} s"
                return result
            time.sleep(0.02)
        tx1 = topo.tx_bytes(origin)
        cpu = cpu_seconds([origin_proc, *(lch.proc for lch in leechers)])
        result.times = [float(d) - start for d in done if d is not None]
        result.egress = tx1 - tx0
        result.origin_cpu = cpu[origin_proc.pid] - cpu0
        result.cpu = sum(cpu.values()) - cpu0
        if way in ("torrentds", "webseed"):
            result.shard_times = [
                sorted(float(e["time"]) - start for e in lch.proc.all("shard_ready"))
                for lch in leechers
            ]
            result.first_shard = [ts[0] if ts else math.nan for ts in result.shard_times]
        if way == "torrentds":
            origin_proc.signal(signal.SIGTERM)  # its "done" event says what it uploaded
            with contextlib.suppress(RuntimeError):
                wait_until(lambda: origin_proc.find("done") is not None, 15, "the seeder's done")
                result.payload = int((origin_proc.find("done") or {})["uploaded"])
        procs.stop_all()
        if way in ("http", "webseed"):
            result.payload = nginx_payload(run_dir / "nginx")
        for lch in leechers:
            problem = verify_copy(ds.folder, lch.folder)
            if problem is not None:
                result.error = problem
                break
        return result
    finally:
        procs.stop_all()
        problems = topo.destroy()
        if problems:
            raise RuntimeError("cleanup failed: " + "; ".join(problems))


# --------------------------------------------------------------------------- report


@dataclass
class Summary:
    way: str
    n: int
    runs: int
    ok: int
    t: float | None
    egress: float | None  # copies
    payload: float | None  # copies
    cpu: float | None
    origin_cpu: float | None
    first_shard: float | None  # median over runs of the slowest leecher's first shard
    first_shard_median: float | None
    errors: list[str]
    times: list[list[float]]


def med(values: Sequence[float]) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else None


def summarize(results: Sequence[RunResult], size: int) -> list[Summary]:
    out = []
    keys = sorted({(r.way, r.n) for r in results}, key=lambda k: (WAYS.index(k[0]), k[1]))
    for way, n in keys:
        runs = [r for r in results if (r.way, r.n) == (way, n)]
        ok = [r for r in runs if r.error is None]
        payloads = [r.payload / size for r in ok if r.payload is not None]
        out.append(
            Summary(
                way=way,
                n=n,
                runs=len(runs),
                ok=len(ok),
                t=med([r.t for r in ok]),
                egress=med([r.egress / size for r in ok]),
                payload=med(payloads),
                cpu=med([r.cpu for r in ok]),
                origin_cpu=med([r.origin_cpu for r in ok]),
                first_shard=med([max(r.first_shard) for r in ok if r.first_shard]),
                first_shard_median=med(
                    [statistics.median(r.first_shard) for r in ok if r.first_shard]
                ),
                errors=[r.error for r in runs if r.error],
                times=[sorted(r.times) for r in ok],
            )
        )
    return out


def t_min(size: int, n: float, seed_bps: float, peer_bps: float) -> float:
    """Kumar–Ross: max(F/u_s, N·F/(u_s + Σu_i)), rates in bytes/s."""
    return max(size / seed_bps, n * size / (seed_bps + n * peer_bps))


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, spec)


def tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return (
        f"nproc {os.cpu_count()}, {model}, {mem} RAM, "
        f"{platform.system()} {platform.release()}, python {platform.python_version()}"
    )


def report(
    args: argparse.Namespace,
    ds: Dataset,
    summaries: Sequence[Summary],
    plot: Path | None,
    results: Sequence[RunResult],
) -> str:
    loads = [r.load1 for r in results]
    seed_bps = args.seed_cap_mbit * 1e6 / 8
    peer_bps = args.cap_mbit * 1e6 / 8
    lines: list[str] = []
    add = lines.append
    add(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    add(f"- machine: {machine()}")
    add(f"- command: `{' '.join(['benchmarks/swarm.py', *args.argv])}`")
    add(f"- torrentds source: {args.source}")
    lt = tool_version([sys.executable, "-c", "import libtorrent; print(libtorrent.__version__)"])
    add(
        f"- tools: {tool_version(torrentds_cmd('--version'))} (libtorrent {lt}); "
        f"{tool_version(['aria2c', '--version'])}; {tool_version(['nginx', '-v'])}; "
        f"{' '.join(tool_version(['curl', '--version']).split()[:2])}; opentracker (Debian "
        f"{tool_version(['dpkg-query', '-W', '-f=${Version}', 'opentracker'])})"
    )
    add(
        f"- network: one namespace per host on a bridge namespace, {args.subnet}.0/24, MTU "
        f"{args.mtu}, no default route; egress caps `tc tbf rate R burst 32kbit latency 50ms`: "
        f"origin {args.seed_cap_mbit:g} Mbit/s, each leecher {args.cap_mbit:g} Mbit/s "
        "(downloads uncapped)"
    )
    add(
        f"- data F: {ds.size:,} bytes ({ds.size / 1e6:,.1f} MB): {ds.shards} WebDataset shards "
        f"of ~{args.shard_mb} MiB (random 1 MiB samples), {ds.pieces} pieces of "
        f"{ds.piece_size // 1024} KiB, adopted by `torrentds create`; origin files in page cache"
    )
    variant = []
    if args.window is not None:
        variant.append(f"get --window {args.window}")
    if args.seed_max_upload:
        variant.append(f"seed --max-upload {args.seed_max_upload}")
    if args.ranked:
        variant.append("leechers: get --rank i --world-size N (each node's shards first)")
    if args.no_slice and not args.ranked:
        variant.append("leechers: plain get, no --slice (shuffled shard window)")
    add(f"- torrentds variant: {'; '.join(variant) if variant else 'defaults (none)'}")
    add(
        f"- runs per case: {args.repeat}; medians. The clock starts when the leechers are "
        "launched (origin already serving) and includes process start-up; T = the last "
        "leecher's completion. Every leecher's copy passed `sha256sum -c SHA256SUMS` before "
        "its run counted."
    )
    if loads:
        add(
            f"- 1-minute load average when the runs started: {min(loads):.1f}–{max(loads):.1f} "
            f"(median {statistics.median(loads):.1f}) on {os.cpu_count()} cores"
        )
    add("")
    add(
        "| way | N | runs ok | T (s) | T_min (s) | T/T_min | origin egress (copies, wire) "
        "| origin payload (copies) | CPU s (all) | CPU s (origin) | leecher finish times (s) |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in summaries:
        bound = t_min(ds.size, s.n, seed_bps, peer_bps)
        ratio = s.t / bound if s.t is not None else None
        finish = "; ".join(", ".join(f"{t:.1f}" for t in ts) for ts in s.times) or "—"
        add(
            f"| {WAY_LABELS[s.way]} | {s.n} | {s.ok}/{s.runs} | **{fmt(s.t, '.1f')}** "
            f"| {bound:.1f} | **{fmt(ratio, '.2f')}** | {fmt(s.egress, '.2f')} "
            f"| {fmt(s.payload, '.2f')} | {fmt(s.cpu, '.1f')} | {fmt(s.origin_cpu, '.1f')} "
            f"| {finish} |"
        )
        for e in s.errors:
            add(f"| | | FAILED: {e.replace('|', '/').splitlines()[0][:300]} | | | | | | | | |")
    add("")
    ns = sorted({s.n for s in summaries})
    bounds = ", ".join(f"N={n}: {n * ds.size / seed_bps:.1f} s" for n in ns)
    add(
        f"HTTP bound N·F/u_s: {bounds}. Wire floor: at MTU {args.mtu} a full TCP segment "
        f"carries {args.mtu - 52} payload bytes in a {args.mtu + 14}-byte frame, so even a "
        f"perfect transfer shows egress ≥ {(args.mtu + 14) / (args.mtu - 52):.3f} copies and "
        f"T/T_min ≥ {(args.mtu + 14) / (args.mtu - 52):.3f} against the nominal cap."
    )
    add("")
    ttfs = [s for s in summaries if s.way in ("torrentds", "webseed") and s.first_shard]
    if ttfs:
        add("Time to first verified shard vs time to complete (torrentds ways):")
        add("")
        add(
            "| way | N | first shard, median leecher (s) | first shard, slowest leecher (s) "
            "| complete, last leecher (s) | first shard / complete |"
        )
        add("|---|---:|---:|---:|---:|---:|")
        for s in ttfs:
            share = s.first_shard / s.t if s.first_shard is not None and s.t else None
            add(
                f"| {WAY_LABELS[s.way]} | {s.n} | {fmt(s.first_shard_median, '.1f')} "
                f"| {fmt(s.first_shard, '.1f')} | {fmt(s.t, '.1f')} | {fmt(share, '.2f')} |"
            )
        add("")
    if args.ttfs:
        add(ttfs_detail(results, ds.shards))
        add("")
    add(targets(summaries, ds.size, seed_bps, peer_bps))
    if plot is not None:
        add("")
        add(f"![T vs N]({plot.name})")
    return "\n".join(lines)


def ttfs_detail(results: Sequence[RunResult], shards: int) -> str:
    """Per leecher: when its first, a quarter, half and all of its shards were verified."""
    out = [
        f"Per leecher (`--ttfs`): seconds from the start until k of its {shards} shards were "
        "verified (sha256 against the manifest, logged to its ready log).",
        "",
        "| way | N | run | leecher | first shard | 25% | 50% | 75% | all (complete) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    runs: dict[tuple[str, int], int] = {}
    for r in results:
        if r.error is not None or not r.shard_times:
            continue
        k = runs[(r.way, r.n)] = runs.get((r.way, r.n), 0) + 1
        for i, ts in enumerate(r.shard_times):
            if not ts:
                continue

            def at(frac: float, ts: list[float] = ts) -> str:
                return f"{ts[max(0, math.ceil(frac * len(ts)) - 1)]:.1f}"

            out.append(
                f"| {WAY_LABELS[r.way]} | {r.n} | {k} | {i} | {ts[0]:.1f} | {at(0.25)} "
                f"| {at(0.5)} | {at(0.75)} | {r.times[i]:.1f} |"
            )
    return "\n".join(out)


def targets(summaries: Sequence[Summary], size: int, seed_bps: float, peer_bps: float) -> str:
    by = {(s.way, s.n): s for s in summaries}
    n = max(s.n for s in summaries)
    out = [f"Targets of issue 5 (N = {n}):", ""]

    def check(label: str, value: float | None, limit: float, unit: str = "") -> None:
        if value is None:
            out.append(f"- {label}: not measured")
            return
        verdict = "met" if value <= limit else "**not met**"
        out.append(f"- {label}: {value:.2f}{unit} (target ≤ {limit:g}{unit}): {verdict}")

    tds = by.get(("torrentds", n))
    web = by.get(("webseed", n))
    bound = t_min(size, n, seed_bps, peer_bps)
    check("torrentds T/T_min", tds.t / bound if tds and tds.t else None, 1.15)
    check("torrentds origin egress, seeder origin", tds.egress if tds else None, 1.15, " copies")
    check(
        "torrentds origin egress, web-seed-only origin", web.egress if web else None, 1.3, " copies"
    )
    http = by.get(("http", n))
    if http and http.egress is not None:
        out.append(f"- HTTP origin egress: {http.egress:.2f} copies")
    for k in sorted({s.n for s in summaries}):
        a, b = by.get(("torrentds", k)), by.get(("aria2c", k))
        if a and b and a.t is not None and b.t is not None:
            verdict = "met" if a.t <= b.t else "**not met**"
            out.append(f"- N={k}: torrentds T {a.t:.1f} s vs aria2c T {b.t:.1f} s: {verdict}")
    return "\n".join(out)


def draw(
    path: Path, summaries: Sequence[Summary], size: int, seed_bps: float, peer_bps: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({s.n for s in summaries})
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    markers = {"torrentds": "o", "aria2c": "s", "http": "^", "webseed": "D"}
    for way in WAYS:
        pts = [(s.n, s.t) for s in summaries if s.way == way and s.t is not None]
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker=markers[way],
                label=WAY_LABELS[way],
            )
    grid = [x / 10 for x in range(10, int(max(ns) * 10) + 1)]
    ax.plot(
        grid,
        [t_min(size, x, seed_bps, peer_bps) for x in grid],
        "k--",
        label="bound T_min = max(F/u_s, N·F/(u_s+Σu_i))",
    )
    ax.plot(grid, [x * size / seed_bps for x in grid], "k:", label="HTTP bound N·F/u_s")
    ax.set_xlabel("leechers N")
    ax.set_ylabel("time until the last leecher is done (s)")
    ax.set_xticks(ns)
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"{size / 1e6:.0f} MB to N hosts, {seed_bps * 8 / 1e6:g} Mbit/s origin, "
        f"{peer_bps * 8 / 1e6:g} Mbit/s per leecher"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=512, help="dataset size in MiB (512)")
    p.add_argument("--shard-mb", type=int, default=32, help="shard size in MiB (32)")
    p.add_argument("--n", type=int, nargs="+", default=[1, 3, 6], help="leecher counts (1 3 6)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; medians (1)")
    p.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    p.add_argument("--cap-mbit", type=float, default=200, help="egress cap per host (200)")
    p.add_argument("--seed-cap-mbit", type=float, help="the origin's cap (default: --cap-mbit)")
    p.add_argument("--mtu", type=int, default=1500, help="MTU of every veth (1500)")
    p.add_argument("--subnet", default="10.213.0", help="the test /24's first three octets")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    p.add_argument("--ready-timeout", type=float, default=60, help="seconds for the origin (60)")
    p.add_argument("--seed", type=int, default=5, help="random seed of the generated data")
    p.add_argument(
        "--window",
        type=int,
        help="torrentds get --window (default: its own); with --no-slice or --ranked",
    )
    p.add_argument("--seed-max-upload", help="torrentds seed --max-upload RATE")
    p.add_argument(
        "--no-slice",
        action="store_true",
        help="torrentds leechers run a plain get (by default leecher i of N gets --slice i/N)",
    )
    p.add_argument(
        "--ranked",
        action="store_true",
        help="torrentds leechers get --rank i --world-size N, as training nodes would",
    )
    p.add_argument(
        "--ttfs",
        action="store_true",
        help="time to first verified shard: torrentds only, with a per-leecher table",
    )
    p.add_argument("--plot", type=Path, default=HERE / "swarm.png", help="PNG (benchmarks/)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--report", type=Path, help="also write the markdown report here")
    p.add_argument("--json-out", type=Path, help="write every run's raw result here")
    p.add_argument(
        "--rev",
        help="benchmark torrentds as committed at this git revision (git archive into the "
        "temp dir, first on PYTHONPATH), not the working tree; e.g. HEAD",
    )
    p.add_argument("--workdir", type=Path, help="parent of the temp dir (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (data and logs)")
    args = p.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    if args.ttfs:
        args.ways = ["torrentds"]
    if args.seed_cap_mbit is None:
        args.seed_cap_mbit = args.cap_mbit
    if min(args.size_mb, args.shard_mb, args.repeat, *args.n) < 1:
        p.error("--size-mb, --shard-mb, --repeat and --n must be positive")
    if max(args.n) > 200:
        p.error("at most 200 leechers (one /24)")
    if args.window is not None and not (args.no_slice or args.ranked):
        # get refuses --window with --slice, and every leecher would exit 2.
        p.error("--window needs --no-slice or --ranked (a slice has no window)")
    if not re.fullmatch(
        r"10\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}", args.subnet
    ):
        p.error("--subnet must be the first three octets of a private /24")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces, tc)")
    needed = ["ip", "tc", "opentracker", "sha256sum", "curl", "sysctl"]
    needed += ["aria2c"] if "aria2c" in args.ways else []
    needed += ["nginx"] if {"http", "webseed"} & set(args.ways) else []
    for tool in needed:
        if shutil.which(tool) is None:
            p.error(f"{tool} not found on PATH")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    prefix = f"tdsb-{os.getpid()}-"
    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    need = args.size_mb * MIB * (1 + max(args.n)) * 1.1 + 256 * MIB
    free = shutil.disk_usage(parent).free
    if free < need:
        raise SystemExit(f"{parent}: {free / 1e9:.1f} GB free, need ~{need / 1e9:.1f} GB")
    work = Path(tempfile.mkdtemp(prefix="torrentds-swarm-", dir=parent))
    work.chmod(0o755)  # opentracker drops to "nobody" and must reach its folder
    code = 1
    try:
        args.source = torrentds_source(args.rev, work / "src")
        log(f"torrentds: {args.source}")
        code = run(args, work, prefix)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); cleaning up")
        code = 130
    finally:
        # No signal may cut the cleanup short.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        left = leftovers(prefix)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if left:
        print("swarm: cleanup failed, left behind:\n  " + "\n  ".join(left), file=sys.stderr)
        return 3
    log(f"cleanup verified: no namespace {prefix}*, no process of ours left")
    return code


def torrentds_source(rev: str | None, dest: Path) -> str:
    """``git archive`` the package at ``rev`` into ``dest`` (children import it from there)."""
    git = ["git", "-C", str(ROOT)]
    if rev is None:
        head = sh([*git, "rev-parse", "--short", "HEAD"], check=False).strip()
        dirty = sh([*git, "status", "--porcelain", "--", "torrentds"], check=False).strip()
        state = "with uncommitted changes in torrentds/" if dirty else "clean"
        return f"working tree {ROOT} (HEAD {head}, {state})"
    full = sh([*git, "rev-parse", "--verify", f"{rev}^{{commit}}"]).strip()
    dest.mkdir(parents=True)
    archive = subprocess.run(
        [*git, "archive", full, "torrentds"], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    # PYTHONPATH comes before the editable install's finder, so ``-m torrentds`` uses dest.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(dest), os.environ.get("PYTHONPATH", "")) if p
    )
    return f"`git archive {full[:12]}` ({rev}) of {ROOT}"


def leftovers(prefix: str) -> list[str]:
    """Kill what is left (bounded), then name anything that still is."""
    for ns in our_namespaces(prefix):
        topo = Topology(prefix, "", 0)
        topo.created = [ns]
        topo.destroy()
    for sid in SESSIONS:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and session_members(SESSIONS):
        reap_any()
        time.sleep(0.1)
    reap_any()
    left = [f"network namespace {ns}" for ns in our_namespaces(prefix)]
    left += session_members(SESSIONS)
    return left


def dump_json(path: Path, size: int, argv: list[str], results: Sequence[RunResult]) -> None:
    data = {"size": size, "args": argv, "runs": [asdict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1))


def run(args: argparse.Namespace, work: Path, prefix: str) -> int:
    seed_bps = args.seed_cap_mbit * 1e6 / 8
    peer_bps = args.cap_mbit * 1e6 / 8
    tracker_url = f"http://{args.subnet}.{TRACKER_OCTET}:{TRACKER_PORT}/announce"
    web_url = f"http://{args.subnet}.{ORIGIN_OCTET}:{HTTP_PORT}/"
    log(f"writing {args.size_mb} MiB as {args.shard_mb} MiB shards; torrentds create")
    t0 = time.perf_counter()
    ds = make_dataset(work, args, tracker_url, web_url)
    log(
        f"  {ds.size:,} bytes, {ds.shards} shards, {ds.pieces} pieces, infohash {ds.infohash} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    hook = work / "aria2-done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    ctx = Ctx(args, work, ds, prefix, hook)
    results: list[RunResult] = []
    counter = 0
    for rep in range(args.repeat):
        for n in args.n:
            ways = list(args.ways) if rep % 2 == 0 else list(reversed(args.ways))
            for way in ways:
                counter += 1
                run_dir = work / f"run{counter:03d}-{way}-{n}"
                run_dir.mkdir()
                log(f"repeat {rep + 1}/{args.repeat}: {way}, N={n}")
                try:
                    result = run_once(ctx, way, n, run_dir)
                finally:
                    if not args.keep:
                        shutil.rmtree(run_dir, ignore_errors=True)
                results.append(result)
                if args.json_out is not None:  # after every run: a stopped run keeps its data
                    dump_json(args.json_out, ds.size, args.argv, results)
                bound = t_min(ds.size, n, seed_bps, peer_bps)
                payload = f"{result.payload / ds.size:.2f}" if result.payload is not None else "—"
                log(
                    f"  T {result.t:.1f} s (T/T_min {result.t / bound:.2f}), egress "
                    f"{result.egress / ds.size:.2f} copies (payload {payload}), CPU "
                    f"{result.cpu:.1f} s (origin {result.origin_cpu:.1f}) "
                    + (f"FAILED {result.error}" if result.error else "verified")
                )
    summaries = summarize(results, ds.size)
    plot = None
    if not args.no_plot:
        plot = args.plot
        draw(plot, summaries, ds.size, seed_bps, peer_bps)
        log(f"plot: {plot}")
    text = report(args, ds, summaries, plot, results)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
