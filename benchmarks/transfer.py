"""Loopback transfer benchmark: torrentds against aria2c, one seeder and N leechers on 127.0.0.1.

One run:

1. writes ``--size-mb`` MiB of random ``.bin`` files and packs them with ``torrentds create``
   into WebDataset shards (``--shard-size``); the .torrent names only a local opentracker,
   whose whitelist gets the info-hash;
2. for every N in ``--n`` and every tool, starts one seeder, waits until the tracker counts
   it as a seed, then starts N leechers at once and times each one from that moment until
   it has every byte (torrentds: its ``completed`` event, after every piece and every shard's
   sha256 checked; aria2c: its ``--on-bt-download-complete`` hook, after every piece's sha1
   checked). Leechers keep seeding until the last one is done, so they help each other.
   Afterwards every leecher's folder is checked with ``sha256sum -c SHA256SUMS``; a run
   whose data does not verify does not count;
3. runs one torrentds seeder capped at ``--max-upload 50M`` serving one torrentds leecher,
   once hash-checked at start (the default) and once with ``--skip-check``, and samples the
   seeder's /proc/PID/stat (utime+stime) and /proc/PID/status (VmRSS, RssAnon, RssFile,
   VmHWM) during the transfer.

``--repeat`` repeats steps 2 and 3; medians are reported. Output: machine info and markdown
tables on stdout, progress on stderr.

Network isolation: every process binds and talks to 127.0.0.1 only. torrentds gets
``--listen 127.0.0.1:0 --no-dht --no-lsd --no-upnp`` (and no web seeds); aria2c gets
``--no-conf --interface=127.0.0.1 --disable-ipv6 --enable-dht=false --enable-dht6=false
--bt-enable-lpd=false --enable-peer-exchange=false --bt-exclude-tracker=* --bt-tracker=<local>``.
The torrent has no default trackers. Run with the project's venv::

    .venv/bin/python benchmarks/transfer.py [--size-mb 1024] [--n 1 6] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote_from_bytes

import requests
from intact import verify_copy

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.procs import ISOLATED, TORRENTDS, Torrentds, free_port, wait_until  # noqa: E402

MIB = 1 << 20
FILE_BYTES = MIB  # one generated sample
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MB = 1e6

# aria2c: nothing but 127.0.0.1, no discovery, no config file, no trackers but ours.
ARIA2C_ISOLATION = [
    "--no-conf=true",
    "--interface=127.0.0.1",
    "--disable-ipv6=true",
    "--async-dns=false",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--bt-exclude-tracker=*",
]
# Quiet console; preallocate with fallocate (aria2c's default "prealloc" writes zeros first).
ARIA2C_COMMON = [
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=warn",
    "--log-level=notice",
    "--file-allocation=falloc",
    "--auto-save-interval=0",
]
HOOK = """#!/bin/sh
# aria2c --on-bt-download-complete: record when this leecher finished (epoch seconds).
date +%s.%N > "$BENCH_DONE_FILE.tmp" && mv "$BENCH_DONE_FILE.tmp" "$BENCH_DONE_FILE"
"""


def log(msg: str) -> None:
    print(f"[transfer] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- tracker


class Tracker:
    """Debian's whitelist-only opentracker on 127.0.0.1, restarted on the same port per run.

    A fresh process per run means no peer from an earlier run is ever handed out, while the
    announce URL written into the .torrent stays valid.
    """

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)  # it chroots here and drops root for "nobody": let it read
        self.whitelist = self.dir / "whitelist.txt"
        self.whitelist.write_text("")
        self.whitelist.chmod(0o644)
        self.allowed: list[str] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/announce"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # opentracker sets SO_REUSEPORT: a stale instance on this port would silently share
        # the announces with the new one. Refuse to start beside one.
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{self.base}/stats", timeout=1)
            raise RuntimeError(f"something already answers on {self.base}")
        self.proc = subprocess.Popen(
            [
                *("opentracker", "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port)),
                *("-d", str(self.dir), "-w", "whitelist.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )
        wait_until(self._answers, 10, "opentracker to listen")
        for infohash in self.allowed:
            self._wait_accepted(infohash)

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"opentracker exited with {self.proc.returncode}")
        try:
            requests.get(f"{self.base}/stats", timeout=1)
        except requests.RequestException:
            return False
        return True

    def allow(self, infohash: str) -> None:
        self.allowed.append(infohash)
        self.whitelist.write_text("".join(h + "\n" for h in self.allowed))
        self._wait_accepted(infohash)

    def _wait_accepted(self, infohash: str) -> None:
        # A "started" announce is refused for a hash not (yet) whitelisted (a "stopped" one
        # is not: opentracker answers it before the whitelist check). The probe peer it
        # adds is removed again with "stopped", so no run is handed a dead address.
        query = (
            f"info_hash={_quote(infohash)}&peer_id=-BENCH0-000000000000&port=1"
            "&uploaded=0&downloaded=0&left=1&compact=1"
        )
        assert self.proc is not None
        proc = self.proc

        def accepted() -> bool:
            body = requests.get(f"{self.url}?{query}&event=started", timeout=2).content
            if b"failure reason" not in body:
                return True
            proc.send_signal(signal.SIGHUP)  # reload the whitelist (a reload can be missed)
            return False

        wait_until(accepted, 10, f"opentracker to whitelist {infohash}", interval=0.2)
        requests.get(f"{self.url}?{query}&event=stopped", timeout=2)
        if self.scrape(infohash) != (0, 0):
            raise RuntimeError(f"opentracker still lists the probe peer for {infohash}")

    def scrape(self, infohash: str) -> tuple[int, int]:
        """(complete, incomplete) peers the tracker knows for ``infohash``."""
        try:
            body = requests.get(
                f"{self.base}/scrape?info_hash={_quote(infohash)}", timeout=2
            ).content
        except requests.RequestException:
            return 0, 0
        complete = re.search(rb"8:completei(\d+)e", body)
        incomplete = re.search(rb"10:incompletei(\d+)e", body)
        return (
            int(complete.group(1)) if complete else 0,
            int(incomplete.group(1)) if incomplete else 0,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, 5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _quote(infohash: str) -> str:
    return quote_from_bytes(bytes.fromhex(infohash), safe="")


# --------------------------------------------------------------------------- processes


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL (bounded)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Procs:
    """Every process a run started, stopped together (SIGTERM for all, then SIGKILL)."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[Any]] = []

    def add(self, proc: subprocess.Popen[Any]) -> None:
        self.popens.append(proc)

    def stop_all(self, timeout: float = 10.0) -> None:
        for proc in self.popens:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.popens:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.popens.clear()


@contextlib.contextmanager
def run_procs() -> Iterator[Procs]:
    procs = Procs()
    try:
        yield procs
    finally:
        procs.stop_all()


def start_torrentds(procs: Procs, args: list[str]) -> Torrentds:
    """A ``torrentds ... --json`` process (events read on a thread) with the isolation flags."""
    t = Torrentds([*args, "--json", *ISOLATED])
    procs.add(t.proc)
    return t


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Dataset:
    folder: Path  # the origin's dataset folder, NAME
    torrent: Path
    infohash: str
    name: str
    size: int
    pieces: int
    piece_size: int
    shards: int


def make_dataset(work: Path, size_mb: int, shard_size: str, tracker: Tracker) -> Dataset:
    raw = work / "raw" / "bench"
    split = raw / "train"
    split.mkdir(parents=True)
    total = size_mb * MIB
    for i in range((total + FILE_BYTES - 1) // FILE_BYTES):
        (split / f"{i:06d}.bin").write_bytes(os.urandom(min(FILE_BYTES, total - i * FILE_BYTES)))
    name = "bench"
    origin = work / "origin"
    origin.mkdir()
    torrent = work / f"{name}.torrent"
    out = subprocess.run(
        [
            *(*TORRENTDS, "create", str(raw), "--shards-dir", str(origin / name)),
            *("--shard-size", shard_size, "--name", name, "-o", str(torrent)),
            *("--no-default-trackers", "--tracker", tracker.url, "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"torrentds create failed ({out.returncode}): {out.stderr}")
    shutil.rmtree(work / "raw")
    result: dict[str, Any] = json.loads(out.stdout)
    folder = Path(result["dataset_dir"])
    if folder != origin / name:
        raise RuntimeError(f"dataset landed in {folder}, expected {origin / name}")
    return Dataset(
        folder=folder,
        torrent=torrent,
        infohash=str(result["infohash"]),
        name=str(result["name"]),
        size=int(result["bytes"]),
        pieces=int(result["pieces"]),
        piece_size=int(result["piece_size"]),
        shards=sum(int(s["shards"]) for s in result["splits"].values()),
    )


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    times: list[float]  # each leecher's seconds from the start to its completion
    error: str | None = None
    note: str = ""

    @property
    def last(self) -> float:
        return max(self.times)


@dataclass
class Scenario:
    tool: str
    n: int
    runs: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    @property
    def median(self) -> float | None:
        ok = self.ok
        return statistics.median(r.last for r in ok) if ok else None


@dataclass
class CpuRun:
    check: str  # how the seeder started: "checked" (hash check first) or "skip-check"
    leecher_s: float
    cpu_pct: float
    main_pct: float  # of which the main (Python) thread
    cpu_s_per_gb: float  # CPU seconds per GB uploaded
    seconds: float
    hwm_mb: float
    rss_mb: float
    anon_mb: float
    file_mb: float
    idle_rss_mb: float
    uploaded: int
    error: str | None = None


@dataclass
class Context:
    args: argparse.Namespace
    work: Path
    tracker: Tracker
    ds: Dataset
    hook: Path


def wait_seeder(ctx: Context, proc: subprocess.Popen[Any], what: str) -> None:
    def seeding() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before seeding")
        return ctx.tracker.scrape(ctx.ds.infohash)[0] >= 1

    wait_until(seeding, ctx.args.ready_timeout, f"{what} to announce as a seed", interval=0.1)


def leecher_dirs(run_dir: Path, n: int) -> list[Path]:
    dirs = [run_dir / f"leecher{i}" for i in range(n)]
    for d in dirs:
        d.mkdir(parents=True)
    return dirs


def verify_all(ctx: Context, dirs: Sequence[Path]) -> str | None:
    for d in dirs:
        problem = verify_copy(ctx.ds.folder, d / ctx.ds.name)
        if problem is not None:
            return problem
    return None


# --------------------------------------------------------------------------- torrentds


def run_torrentds(ctx: Context, n: int, run_dir: Path) -> Run:
    ds = ctx.ds
    dirs = leecher_dirs(run_dir, n)
    times: list[float] = []
    note = ""
    with run_procs() as procs:
        seeder = start_torrentds(procs, ["seed", str(ds.folder), str(ds.torrent), "--skip-check"])
        wait_seeder(ctx, seeder.proc, "torrentds seed")
        os.sync()
        start = time.time()
        leechers = [
            start_torrentds(
                procs,
                [
                    "get",
                    str(ds.torrent),
                    "-d",
                    str(d),
                    "--seed-hours",
                    "inf",
                    "--no-default-trackers",
                ],
            )
            for d in dirs
        ]
        deadline = time.monotonic() + ctx.args.timeout
        try:
            for leecher in leechers:
                left = max(1.0, deadline - time.monotonic())
                event = leecher.wait_event("completed", left)
                times.append(float(event["time"]) - start)
        except AssertionError as exc:
            return Run(times, error=f"torrentds leecher did not complete: {str(exc)[:800]}")
        # Stop the seeder gracefully first: its final "done" event says what it uploaded.
        seeder.proc.terminate()
        with contextlib.suppress(AssertionError):
            done = seeder.wait_event("done", 15)
            note = f"{int(done['uploaded']) / ds.size:.2f}×"
    problem = verify_all(ctx, dirs)
    return Run(times, error=problem, note=note)


# --------------------------------------------------------------------------- aria2c


def aria2c(
    procs: Procs, ctx: Context, args: list[str], logfile: Path, env_done: Path | None
) -> subprocess.Popen[bytes]:
    cmd = [
        "aria2c",
        *ARIA2C_ISOLATION,
        f"--bt-tracker={ctx.tracker.url}",
        f"--listen-port={free_port()}",
        *ARIA2C_COMMON,
        f"--log={logfile}",
        f"--stop-with-process={os.getpid()}",
        *args,
        str(ctx.ds.torrent),
    ]
    env = dict(os.environ)
    if env_done is not None:
        env["BENCH_DONE_FILE"] = str(env_done)
    with logfile.with_suffix(".out").open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    procs.add(proc)
    return proc


def run_aria2c(ctx: Context, n: int, run_dir: Path) -> Run:
    ds = ctx.ds
    dirs = leecher_dirs(run_dir, n)
    marks = [run_dir / f"done{i}" for i in range(n)]
    times: list[float] = []
    with run_procs() as procs:
        # -V hashes the origin's files (untimed, before the clock starts); with
        # --bt-hash-check-seed it then seeds them; --seed-ratio=0.0 alone: seed forever.
        seeder = aria2c(
            procs,
            ctx,
            [
                *(f"--dir={ds.folder.parent}", "--check-integrity=true"),
                *("--bt-hash-check-seed=true", "--seed-ratio=0.0"),
            ],
            run_dir / "seeder.log",
            None,
        )
        wait_seeder(ctx, seeder, "aria2c seeder")
        os.sync()
        start = time.time()
        leechers = [
            aria2c(
                procs,
                ctx,
                [
                    *(f"--dir={d}", "--seed-ratio=0.0"),
                    f"--seed-time={ctx.args.aria2_seed_minutes}",
                    f"--on-bt-download-complete={ctx.hook}",
                ],
                run_dir / f"leecher{i}.log",
                mark,
            )
            for i, (d, mark) in enumerate(zip(dirs, marks, strict=True))
        ]
        deadline = time.monotonic() + ctx.args.timeout
        while not all(m.exists() for m in marks):
            dead = [i for i, p in enumerate(leechers) if p.poll() is not None]
            if dead or seeder.poll() is not None:
                tail = (run_dir / f"leecher{dead[0]}.out").read_text()[-800:] if dead else ""
                return Run(times, error=f"aria2c exited early (leechers {dead}): {tail}")
            if time.monotonic() > deadline:
                return Run(times, error=f"aria2c leechers not done after {ctx.args.timeout} s")
            time.sleep(0.05)
        times = [float(m.read_text().strip()) - start for m in marks]
    problem = verify_all(ctx, dirs)
    return Run(times, error=problem)


# --------------------------------------------------------------------------- seeder cost


def _ticks(stat_path: str) -> int:
    with open(stat_path, encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime: fields 14 and 15 of proc(5)


def proc_sample(pid: int) -> tuple[int, int, dict[str, int]]:
    """(process ticks, main thread ticks, {VmRSS, VmHWM, RssAnon, RssFile: kB}).

    The main thread runs torrentds' Python loop; libtorrent's work is on its own threads.
    """
    ticks = _ticks(f"/proc/{pid}/stat")
    main = _ticks(f"/proc/{pid}/task/{pid}/stat")
    mem: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                mem[key] = int(value.split()[0])
    return ticks, main, mem


class Sampler:
    """Samples a process's CPU ticks and memory every ``interval`` s on a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, int, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            ticks, main, mem = proc_sample(self.pid)
            self.samples.append((time.monotonic(), ticks, main, mem))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()


def run_cpu(ctx: Context, run_dir: Path, check: str) -> CpuRun:
    """``check``: "checked" hash-checks the folder before seeding (the default);
    "skip-check" trusts it, and libtorrent then hashes each piece the first
    time it is asked for (seed mode), which costs CPU while serving."""
    ds = ctx.ds
    (d,) = leecher_dirs(run_dir, 1)
    with run_procs() as procs:
        seeder = start_torrentds(
            procs,
            [
                *("seed", str(ds.folder), str(ds.torrent)),
                *(["--skip-check"] if check == "skip-check" else []),
                *("--max-upload", ctx.args.max_upload),
            ],
        )
        wait_seeder(ctx, seeder.proc, "torrentds seed (capped)")
        time.sleep(1.0)  # let start-up settle; the idle RSS is measured after it
        _, _, idle = proc_sample(seeder.proc.pid)
        os.sync()
        sampler = Sampler(seeder.proc.pid)
        start = time.time()
        sampler.start()
        leecher = start_torrentds(
            procs,
            ["get", str(ds.torrent), "-d", str(d), "--seed-hours", "inf", "--no-default-trackers"],
        )
        try:
            event = leecher.wait_event("completed", ctx.args.timeout)
        except AssertionError as exc:
            sampler.stop()
            return CpuRun(check, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, error=str(exc)[:800])
        sampler.stop()
        leecher_s = float(event["time"]) - start
        uploaded = 0
        seeder.proc.terminate()
        with contextlib.suppress(AssertionError):
            uploaded = int(seeder.wait_event("done", 15)["uploaded"])
    first, last = sampler.samples[0], sampler.samples[-1]
    seconds = last[0] - first[0]
    cpu_s = (last[1] - first[1]) / CLK_TCK
    main_s = (last[2] - first[2]) / CLK_TCK
    mems = [m for _, _, _, m in sampler.samples]

    def peak(key: str) -> float:
        return max(m.get(key, 0) for m in mems) * 1024 / PAGE_MB

    problem = verify_copy(ds.folder, d / ds.name)
    return CpuRun(
        check=check,
        leecher_s=leecher_s,
        cpu_pct=cpu_s / seconds * 100 if seconds > 0 else 0.0,
        main_pct=main_s / seconds * 100 if seconds > 0 else 0.0,
        cpu_s_per_gb=cpu_s / (uploaded / 1e9) if uploaded else 0.0,
        seconds=seconds,
        hwm_mb=peak("VmHWM"),
        rss_mb=peak("VmRSS"),
        anon_mb=peak("RssAnon"),
        file_mb=peak("RssFile"),
        idle_rss_mb=idle.get("VmRSS", 0) * 1024 / PAGE_MB,
        uploaded=uploaded,
        error=problem,
    )


# --------------------------------------------------------------------------- report


def tool_version(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total() -> str:
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return "unknown"


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def torrentds_source(rev: str | None) -> str:
    """Which torrentds the runs used: a git archive of ``rev``, or the imported tree."""
    if rev is not None:
        return f"`git archive {rev}` of {ROOT}"
    where = tool_version([sys.executable, "-c", "import torrentds; print(torrentds.__file__)"])
    tree = Path(where).parent
    head = tool_version(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    if status.returncode != 0:
        return f"{tree} (not a git checkout)"
    dirty = "with uncommitted changes" if status.stdout.strip() else "clean"
    return f"working tree {tree} (HEAD {head}, {dirty})"


def checkout(rev: str, dest: Path) -> str:
    """``git archive`` the package at ``rev`` into ``dest``; every child imports it from there."""
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", full, "torrentds"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    # PYTHONPATH comes before the editable install's finder, so ``-m torrentds`` uses dest.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(dest), os.environ.get("PYTHONPATH", "")) if p
    )
    return full


def print_header(args: argparse.Namespace, ds: Dataset) -> None:
    lt_version = tool_version(
        [sys.executable, "-c", "import libtorrent; print(libtorrent.__version__)"]
    )
    print("### transfer on loopback: torrentds vs aria2c\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"- machine: nproc {os.cpu_count()}, {cpu_model()}, {mem_total()} RAM, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"- python: {platform.python_version()} ({sys.executable})")
    print(f"- torrentds source: {torrentds_source(args.rev_hash)}")
    print(
        f"- tools: {tool_version([*TORRENTDS, '--version'])}, libtorrent {lt_version}; "
        f"{tool_version(['aria2c', '--version'])}; "
        f"opentracker (Debian {tool_version(['dpkg-query', '-W', '-f=${Version}', 'opentracker'])})"
    )
    print(
        f"- data: {ds.size / 1e6:,.0f} MB ({ds.size:,} bytes) in {ds.shards} shards, "
        f"{ds.pieces} pieces of {ds.piece_size // 1024} KiB; origin files in page cache"
    )
    print(
        f"- runs per case: {args.repeat} (median of the last leecher's time); MB = 10^6 bytes; "
        "the clock starts when the leechers are launched (seeder already announced) and "
        "includes process start-up"
    )
    before = ", ".join(f"{x:.2f}" for x in args.load_before)
    after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"- load average (1, 5, 15 min): {before} before the first run, {after} after the last")
    print()


def _span(times: Sequence[float]) -> str:
    lo, hi = min(times), max(times)
    return f"{hi:.1f}" if len(times) == 1 else f"{lo:.1f}–{hi:.1f}"


def print_transfer(scenarios: Sequence[Scenario], ds: Dataset) -> None:
    print("#### time until the last leecher has every byte verified\n")
    print(
        "| tool | leechers | runs ok | time (s, median) | first–last leecher done (s), per run "
        "| MB/s per leecher | aggregate MB/s |"
    )
    print("|---|---:|---:|---:|---|---:|---:|")
    for s in scenarios:
        med = s.median
        per = ds.size / 1e6 / med if med else None
        agg = per * s.n if per is not None else None
        ok = s.ok
        finish = "; ".join(_span(r.times) for r in ok) if ok else "—"
        errors = [r.error for r in s.runs if r.error]
        status = f"{len(ok)}/{len(s.runs)}"
        print(
            f"| {s.tool} | {s.n} | {status} | **{fmt(med, '.2f')}** | {finish} "
            f"| {fmt(per, '.0f')} | {fmt(agg, '.0f')} |"
        )
        for e in errors:
            print(f"|  | | FAILED: {e.replace('|', '/').splitlines()[0][:300]} | | | | |")
    print()
    by = {(s.tool, s.n): s.median for s in scenarios}
    for n in sorted({s.n for s in scenarios}):
        a, b = by.get(("torrentds", n)), by.get(("aria2c", n))
        if a and b:
            verdict = "about the same" if abs(a / b - 1) < 0.03 else "faster" if a < b else "slower"
            print(f"- N={n}: torrentds / aria2c time = **{a / b:.2f}×** ({verdict})")
    for s in scenarios:
        notes = [r.note for r in s.ok if r.note]
        if notes:
            print(f"- {s.tool} N={s.n}: the seeder uploaded {', '.join(notes)} the dataset")
    print()


def print_cpu(runs: Sequence[CpuRun], args: argparse.Namespace, ds: Dataset) -> None:
    print(f"#### torrentds seeder at --max-upload {args.max_upload}, serving one leecher\n")
    print(
        "| seeder started | runs ok | leecher time (s) | leecher MB/s "
        "| seeder CPU (% of one core) | of which Python main thread (%) | CPU s per GB sent "
        "| peak RSS, VmHWM (MB) | peak RssAnon (MB) | peak RssFile (MB) | idle RSS (MB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    checks = list(dict.fromkeys(r.check for r in runs))
    for check in checks:
        mine = [r for r in runs if r.check == check]
        ok = [r for r in mine if r.error is None]

        def med(get: Callable[[CpuRun], float], ok: list[CpuRun] = ok) -> float | None:
            return statistics.median(get(r) for r in ok) if ok else None

        t = med(lambda r: r.leecher_s)
        print(
            f"| {check} | {len(ok)}/{len(mine)} | {fmt(t, '.1f')} "
            f"| {fmt(ds.size / 1e6 / t if t else None, '.1f')} "
            f"| **{fmt(med(lambda r: r.cpu_pct), '.1f')}** "
            f"| {fmt(med(lambda r: r.main_pct), '.1f')} "
            f"| {fmt(med(lambda r: r.cpu_s_per_gb), '.2f')} "
            f"| **{fmt(med(lambda r: r.hwm_mb), '.0f')}** "
            f"| {fmt(med(lambda r: r.anon_mb), '.0f')} | {fmt(med(lambda r: r.file_mb), '.0f')} "
            f"| {fmt(med(lambda r: r.idle_rss_mb), '.0f')} |"
        )
    if len(runs) > len(checks):
        per_run = "; ".join(
            f"{r.check} {r.leecher_s:.1f} s, {r.cpu_pct:.1f}%, {r.hwm_mb:.0f} MB"
            for r in runs
            if r.error is None
        )
        print(f"\nPer run (leecher time, seeder CPU, VmHWM): {per_run}")
    for r in runs:
        if r.error:
            print(f"\nFAILED: {r.error.splitlines()[0][:300]}")
    print(
        "\nTargets (issue 3): ≤ 10% of one core, ≤ 200 MB RSS. CPU = utime+stime of the "
        "seeder process (/proc/PID/stat) from the leecher's launch to its completion, as a "
        "share of that wall time; the main thread (/proc/PID/task/PID/stat) runs torrentds' "
        "Python loop, the rest is libtorrent's threads. RSS from /proc/PID/status, sampled "
        'every 0.2 s; VmHWM is the kernel\'s own peak. "checked": the seeder hash-checked '
        "the folder before the clock started (the default of `torrentds seed`); "
        '"skip-check": it trusts the folder and libtorrent hashes each piece the first '
        "time a peer asks for it, while serving."
    )
    print()


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=1024, help="dataset size in MiB (1024)")
    p.add_argument("--shard-size", default="256M", help="torrentds create --shard-size (256M)")
    p.add_argument("--n", type=int, nargs="+", default=[1, 6], help="leecher counts (1 6)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; medians (1)")
    p.add_argument(
        "--tools", nargs="+", default=["torrentds", "aria2c"], choices=["torrentds", "aria2c"]
    )
    p.add_argument("--no-cpu", action="store_true", help="skip the capped-seeder CPU/RSS run")
    p.add_argument("--max-upload", default="50M", help="seeder cap for the CPU/RSS run (50M)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per transfer run (900)")
    p.add_argument("--ready-timeout", type=float, default=120, help="seconds for a seeder (120)")
    p.add_argument(
        "--aria2-seed-minutes",
        type=float,
        default=1440,
        help="aria2c leechers' --seed-time; they are stopped when the run ends (1440)",
    )
    p.add_argument("--workdir", type=Path, help="parent of the temp dir (default /tmp)")
    p.add_argument(
        "--rev",
        help="benchmark torrentds as committed at this git revision (git archive into the "
        "temp dir), not the working tree; e.g. HEAD",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (data and logs)")
    args = p.parse_args(argv)
    if min(args.size_mb, args.repeat, *args.n) < 1:
        p.error("--size-mb, --repeat and --n must be positive")
    for tool in ("opentracker", "sha256sum", *(["aria2c"] if "aria2c" in args.tools else [])):
        if shutil.which(tool) is None:
            p.error(f"{tool} not found on PATH")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    need = args.size_mb * MIB * (2 + max(args.n)) + 512 * MIB
    free = shutil.disk_usage(parent).free
    if free < need:
        raise SystemExit(f"{parent}: {free / 1e9:.1f} GB free, need ~{need / 1e9:.1f} GB")
    work = Path(tempfile.mkdtemp(prefix="torrentds-transfer-", dir=parent))
    work.chmod(0o755)  # opentracker drops to "nobody" and must reach its folder
    tracker = Tracker(work / "opentracker")
    args.rev_hash = None
    args.load_before = os.getloadavg()
    try:
        if args.rev is not None:
            args.rev_hash = checkout(args.rev, work / "src")
            log(f"torrentds from git archive {args.rev_hash}")
        tracker.start()
        return run(args, work, tracker)
    finally:
        tracker.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, tracker: Tracker) -> int:
    log(f"writing {args.size_mb} MiB of random files and packing them with torrentds create")
    t0 = time.perf_counter()
    ds = make_dataset(work, args.size_mb, args.shard_size, tracker)
    tracker.allow(ds.infohash)
    log(
        f"  {ds.size:,} bytes, {ds.shards} shards, infohash {ds.infohash} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    hook = work / "aria2-done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    ctx = Context(args, work, tracker, ds, hook)
    runners: dict[str, Callable[[Context, int, Path], Run]] = {
        "torrentds": run_torrentds,
        "aria2c": run_aria2c,
    }
    scenarios = {(tool, n): Scenario(tool, n) for n in args.n for tool in args.tools}
    cpu_runs: list[CpuRun] = []
    counter = 0
    for rep in range(args.repeat):
        for n in args.n:
            tools = args.tools if rep % 2 == 0 else list(reversed(args.tools))
            for tool in tools:
                counter += 1
                run_dir = work / f"run{counter:03d}-{tool}-{n}"
                run_dir.mkdir()
                tracker.restart()
                log(f"repeat {rep + 1}/{args.repeat}: {tool}, {n} leecher(s)")
                try:
                    result = runners[tool](ctx, n, run_dir)
                finally:
                    if not args.keep:
                        shutil.rmtree(run_dir, ignore_errors=True)
                scenarios[(tool, n)].runs.append(result)
                times = ", ".join(f"{t:.1f}" for t in result.times)
                log(
                    f"  times [{times}] s"
                    + (f", seeder uploaded {result.note} " if result.note else " ")
                    + (f"FAILED {result.error}" if result.error else "verified")
                )
        for check in [] if args.no_cpu else ["checked", "skip-check"]:
            counter += 1
            run_dir = work / f"run{counter:03d}-cpu-{check}"
            run_dir.mkdir()
            tracker.restart()
            log(
                f"repeat {rep + 1}/{args.repeat}: "
                f"torrentds seeder ({check}) at --max-upload {args.max_upload}"
            )
            try:
                cpu = run_cpu(ctx, run_dir, check)
            finally:
                if not args.keep:
                    shutil.rmtree(run_dir, ignore_errors=True)
            cpu_runs.append(cpu)
            log(
                f"  leecher {cpu.leecher_s:.1f} s, CPU {cpu.cpu_pct:.1f}%, "
                f"VmHWM {cpu.hwm_mb:.0f} MB, "
                f"RssAnon {cpu.anon_mb:.0f} MB, RssFile {cpu.file_mb:.0f} MB {cpu.error or ''}"
            )
    print_header(args, ds)
    print_transfer(list(scenarios.values()), ds)
    if cpu_runs:
        print_cpu(cpu_runs, args, ds)
    failed = any(r.error for s in scenarios.values() for r in s.runs) or any(
        r.error for r in cpu_runs
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
