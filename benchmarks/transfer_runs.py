"""The runs of ``transfer.py``: one seeder and N leechers on 127.0.0.1, per tool, and the
capped torrentds seeder whose CPU and memory are sampled."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.aria2 import Aria2, done_time
from harness.data import Dataset
from harness.netns import LOOPBACK
from harness.procs import Proc, Procs, stop_seeder
from harness.proctime import CLK_TCK, Sampler, sample
from harness.servers import Tracker
from harness.verify import verify_copies

# torrentds: nothing but 127.0.0.1, no discovery; events as JSON lines.
ISOLATED = ["--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp", "--json"]


@dataclass
class Run:
    times: list[float]  # each leecher's seconds from the start to its completion
    error: str | None = None
    note: str = ""  # what the seeder uploaded, in copies of the dataset

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
    leecher_s: float = 0.0
    cpu_pct: float = 0.0
    main_pct: float = 0.0  # of which the main (Python) thread
    cpu_s_per_gb: float = 0.0  # CPU seconds per GB uploaded
    seconds: float = 0.0
    hwm_mb: float = 0.0
    rss_mb: float = 0.0
    anon_mb: float = 0.0
    file_mb: float = 0.0
    idle_rss_mb: float = 0.0
    uploaded: int = 0
    error: str | None = None


@dataclass
class Context:
    args: argparse.Namespace
    ds: Dataset
    tracker: Tracker
    aria2: Aria2
    hook: Path  # aria2c leechers' completion hook

    def seeding(self, seeder: Proc) -> None:
        """Until the tracker counts ``seeder`` as a seed; the clock starts after this."""
        self.tracker.wait_seeding(self.ds.infohash, seeder, self.args.ready_timeout)
        os.sync()


def leecher_homes(run_dir: Path, n: int) -> list[Path]:
    homes = [run_dir / f"leecher{i}" for i in range(n)]
    for home in homes:
        home.mkdir(parents=True)
    return homes


def get_args(ds: Dataset, home: Path) -> list[str]:
    """A leecher that keeps seeding until the run stops it (it helps the others)."""
    return [
        *("get", str(ds.torrent), "-d", str(home), "--seed-hours", "inf"),
        *("--no-default-trackers", *ISOLATED),
    ]


def run_torrentds(ctx: Context, n: int, run_dir: Path) -> Run:
    ds = ctx.ds
    homes = leecher_homes(run_dir, n)
    times: list[float] = []
    with Procs(run_dir) as procs:
        ctx.tracker.start(procs, run_dir / "opentracker", [ds.infohash])
        seed = ["seed", str(ds.folder), str(ds.torrent), "--skip-check", *ISOLATED]
        seeder = procs.torrentds("seeder", seed)
        ctx.seeding(seeder)
        start = time.time()
        leechers = [procs.torrentds(f"leecher{i}", get_args(ds, h)) for i, h in enumerate(homes)]
        deadline = time.monotonic() + ctx.args.timeout
        try:
            for leecher in leechers:
                event = leecher.wait_event("completed", max(1.0, deadline - time.monotonic()))
                times.append(float(event["time"]) - start)
        except RuntimeError as exc:
            return Run(times, error=f"torrentds leecher did not complete: {str(exc)[:800]}")
        uploaded = stop_seeder(seeder)
    note = f"{uploaded / ds.size:.2f}×" if uploaded is not None else ""
    return Run(times, verify_copies(ds.folder, [h / ds.name for h in homes]), note)


def run_aria2c(ctx: Context, n: int, run_dir: Path) -> Run:
    ds = ctx.ds
    homes = leecher_homes(run_dir, n)
    with Procs(run_dir) as procs:
        ctx.tracker.start(procs, run_dir / "opentracker", [ds.infohash])
        seeder = ctx.aria2.seeder(procs, LOOPBACK, ds.folder.parent)
        ctx.seeding(seeder)
        start = time.time()
        minutes = ctx.args.aria2_seed_minutes
        leechers = [
            ctx.aria2.leecher(procs, f"leecher{i}", LOOPBACK, home, ctx.hook, minutes)
            for i, home in enumerate(homes)
        ]
        deadline = time.monotonic() + ctx.args.timeout
        while not all(done_time(mark) for _, mark in leechers):
            dead = [p for p, _ in leechers if p.poll() is not None]
            if dead or seeder.poll() is not None:
                tail = dead[0].tail(800) if dead else seeder.tail(800)
                labels = [p.label for p in dead]
                return Run([], error=f"aria2c exited early (leechers {labels}): {tail}")
            if time.monotonic() > deadline:
                return Run([], error=f"aria2c leechers not done after {ctx.args.timeout} s")
            time.sleep(0.05)
        times = [(done_time(mark) or 0.0) - start for _, mark in leechers]
    return Run(times, verify_copies(ds.folder, [h / ds.name for h in homes]))


def run_cpu(ctx: Context, run_dir: Path, check: str) -> CpuRun:
    """``check``: "checked" hash-checks the folder before seeding (the default);
    "skip-check" trusts it, and libtorrent then hashes each piece the first
    time it is asked for (seed mode), which costs CPU while serving."""
    ds = ctx.ds
    (home,) = leecher_homes(run_dir, 1)
    with Procs(run_dir) as procs:
        ctx.tracker.start(procs, run_dir / "opentracker", [ds.infohash])
        skip = ["--skip-check"] if check == "skip-check" else []
        cap = ["--max-upload", ctx.args.max_upload]
        seed = ["seed", str(ds.folder), str(ds.torrent), *skip, *cap, *ISOLATED]
        seeder = procs.torrentds("seeder", seed)
        ctx.seeding(seeder)
        time.sleep(1.0)  # let start-up settle: the idle RSS is measured after it
        idle_kb = sample(seeder.pid).memory_kb.get("VmRSS", 0)
        start = time.time()
        with Sampler(seeder.pid) as sampler:
            leecher = procs.torrentds("leecher", get_args(ds, home))
            try:
                event = leecher.wait_event("completed", ctx.args.timeout)
            except RuntimeError as exc:
                return CpuRun(check, error=str(exc)[:800])
        uploaded = stop_seeder(seeder) or 0
    run = cpu_run(check, sampler, uploaded)
    run.leecher_s = float(event["time"]) - start
    run.idle_rss_mb = idle_kb * 1024 / 1e6
    run.error = verify_copies(ds.folder, [home / ds.name])
    return run


def cpu_run(check: str, sampler: Sampler, uploaded: int) -> CpuRun:
    """The seeder's CPU share and memory peaks over the sampled span."""
    first, last = sampler.samples[0], sampler.samples[-1]
    seconds = last.at - first.at
    cpu_s = (last.ticks - first.ticks) / CLK_TCK
    main_s = (last.main_ticks - first.main_ticks) / CLK_TCK
    return CpuRun(
        check=check,
        cpu_pct=cpu_s / seconds * 100 if seconds > 0 else 0.0,
        main_pct=main_s / seconds * 100 if seconds > 0 else 0.0,
        cpu_s_per_gb=cpu_s / (uploaded / 1e9) if uploaded else 0.0,
        seconds=seconds,
        hwm_mb=sampler.peak_mb("VmHWM"),
        rss_mb=sampler.peak_mb("VmRSS"),
        anon_mb=sampler.peak_mb("RssAnon"),
        file_mb=sampler.peak_mb("RssFile"),
        uploaded=uploaded,
    )


def failures(scenarios: Sequence[Scenario], cpu_runs: Sequence[CpuRun]) -> bool:
    return any(r.error for s in scenarios for r in s.runs) or any(r.error for r in cpu_runs)
