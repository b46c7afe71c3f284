"""One run of ``swarm.py``: a fresh network, one way, N leechers, timed and verified."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.netns import Host, Topology, tx_bytes
from harness.procs import Proc, Procs, stop_seeder
from harness.proctime import cpu_seconds
from harness.servers import Tracker, nginx_payload
from harness.verify import verify_copies
from swarm_ways import (
    FIRST_LEECHER_OCTET,
    ORIGIN_OCTET,
    TORRENTDS_WAYS,
    TRACKER_OCTET,
    TRACKER_PORT,
    Ctx,
    Leecher,
    start_leecher,
    start_origin,
    wait_origin,
)


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
    killed: int = 0  # leechers killed mid-run (--kill-at): not timed or checked
    error: str | None = None

    @property
    def t(self) -> float:
        return max(self.times) if self.times else math.nan


@dataclass(frozen=True)
class Start:
    """What was read when the leechers were launched."""

    time: float
    tx_bytes: int  # of the origin's interface
    origin_cpu: float


def run_once(ctx: Ctx, way: str, n: int, run_dir: Path) -> RunResult:
    """Build the network, start the origin, launch N leechers and time them; every copy
    checked. Every process is stopped and every namespace deleted before it returns."""
    args = ctx.args
    result = RunResult(way, n, load1=os.getloadavg()[0])
    topo = Topology(ctx.prefix, args.subnet, args.mtu, args.delay_ms)
    try:
        with Procs(run_dir) as procs:
            topo.build_bridge()
            trk = topo.add_host("trk", TRACKER_OCTET, args.cap_mbit)
            origin = topo.add_host("org", ORIGIN_OCTET, args.seed_cap_mbit)
            hosts = [
                topo.add_host(f"l{i}", FIRST_LEECHER_OCTET + i, args.cap_mbit) for i in range(n)
            ]
            tracker = Tracker(trk, TRACKER_PORT)
            tracker.start(procs, run_dir / "opentracker", [ctx.ds.infohash])
            origin_proc = start_origin(ctx, way, procs, origin)
            wait_origin(ctx, way, origin_proc, tracker)
            time.sleep(0.5)  # let the origin settle (its first announce reply, nginx's accept)
            leechers = race(ctx, way, procs, origin, origin_proc, hosts, result)
        if result.error is None:
            finish(result, run_dir, ctx.ds.folder, leechers)
        return result
    finally:
        problems = topo.destroy()
        if problems:
            raise RuntimeError("cleanup failed: " + "; ".join(problems))


def race(
    ctx: Ctx,
    way: str,
    procs: Procs,
    origin: Host,
    origin_proc: Proc,
    hosts: Sequence[Host],
    result: RunResult,
) -> list[Leecher]:
    """Launch the leechers (all at once, or the last one late) and wait until every one
    not killed is done; fills ``result``."""
    start = Start(time.time(), tx_bytes(origin), cpu_seconds([origin_proc])[origin_proc.pid])
    args, n = ctx.args, len(hosts)
    now = hosts[:-1] if args.late_at is not None else hosts
    leechers = [start_leecher(ctx, way, procs, i, h, n) for i, h in enumerate(now)]
    script = Script(
        args.kill_at, args.late_at, lambda: start_leecher(ctx, way, procs, n - 1, hosts[-1], n)
    )
    result.error = wait_done(leechers, origin_proc, args.timeout, script)
    if script.killed is not None:
        leechers.remove(script.killed)
        result.killed = 1
    if result.error is not None:
        return leechers
    tx_end = tx_bytes(origin)
    cpu = cpu_seconds([origin_proc, *(lch.proc for lch in leechers)])
    result.times = [float(lch.done_at() or math.nan) - start.time for lch in leechers]
    result.egress = tx_end - start.tx_bytes
    result.origin_cpu = cpu[origin_proc.pid] - start.origin_cpu
    result.cpu = sum(cpu.values()) - start.origin_cpu
    if way in TORRENTDS_WAYS:
        result.shard_times = [
            sorted(float(e["time"]) - start.time for e in lch.proc.all("shard_ready"))
            for lch in leechers
        ]
        result.first_shard = [ts[0] if ts else math.nan for ts in result.shard_times]
    if way == "torrentds":
        result.payload = stop_seeder(origin_proc)
    return leechers


class Script:
    """What happens mid-run: leecher 0 killed (``kill_at``) and the last leecher started
    late (``late_at``), each once a leecher has verified that fraction of the shards."""

    def __init__(
        self, kill_at: float | None, late_at: float | None, start_late: Callable[[], Leecher]
    ) -> None:
        self.kill_at, self.late_at, self.start_late = kill_at, late_at, start_late
        self.killed: Leecher | None = None
        self.joined = late_at is None

    def step(self, leechers: list[Leecher]) -> None:
        live = [lch for lch in leechers if lch is not self.killed]
        lead = max(shards_done(lch.proc) for lch in live)
        if self.kill_at is not None and self.killed is None and lead >= self.kill_at:
            self.killed = leechers[0]
            self.killed.proc.signal(signal.SIGKILL)
        if not self.joined and self.late_at is not None and lead >= self.late_at:
            leechers.append(self.start_late())
            self.joined = True

    def waiting_for(self, leechers: Sequence[Leecher]) -> list[Leecher]:
        return [lch for lch in leechers if lch is not self.killed]


def shards_done(proc: Proc) -> float:
    """The fraction of its shards a torrentds leecher has verified (0 before it knows)."""
    totals = [int(e.get("shards_total") or 0) for e in proc.all("progress")]
    total = max(totals, default=0)
    return len(proc.all("shard_ready")) / total if total else 0.0


def wait_done(
    leechers: list[Leecher], origin: Proc, timeout: float, script: Script | None = None
) -> str | None:
    """Until every leecher (not killed, and the late one started) is done (None), or why not."""
    deadline = time.monotonic() + timeout
    while True:
        if script is not None:
            script.step(leechers)
        waited = script.waiting_for(leechers) if script is not None else leechers
        done = [lch.done_at() for lch in waited]
        if all(d is not None for d in done) and (script is None or script.joined):
            return None
        failed = [f for lch in waited if (f := lch.failure()) is not None]
        if failed:
            return failed[0][:800]
        if origin.poll() is not None:
            return f"origin exited with {origin.popen.returncode}"
        if time.monotonic() > deadline:
            left = sum(d is None for d in done)
            return f"{left} of {len(leechers)} leechers not done after {timeout:.0f} s"
        time.sleep(0.02)


def finish(result: RunResult, run_dir: Path, origin: Path, leechers: Sequence[Leecher]) -> None:
    """After every process stopped: nginx's payload, and every copy checked."""
    if result.way in ("http", "webseed"):
        result.payload = nginx_payload(run_dir / "nginx")
    result.error = verify_copies(origin, [lch.folder for lch in leechers])
