"""One run of ``swarm.py``: a fresh network, one way, N leechers, timed and verified."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
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
    topo = Topology(ctx.prefix, args.subnet, args.mtu)
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
    """Launch every leecher at once and wait until all are done; fills ``result``."""
    start = Start(time.time(), tx_bytes(origin), cpu_seconds([origin_proc])[origin_proc.pid])
    leechers = [start_leecher(ctx, way, procs, i, h, len(hosts)) for i, h in enumerate(hosts)]
    result.error = wait_done(leechers, origin_proc, ctx.args.timeout)
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


def wait_done(leechers: Sequence[Leecher], origin: Proc, timeout: float) -> str | None:
    """Until every leecher is done (None), or why not."""
    deadline = time.monotonic() + timeout
    while True:
        done = [lch.done_at() for lch in leechers]
        if all(d is not None for d in done):
            return None
        failed = [f for lch in leechers if (f := lch.failure()) is not None]
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
