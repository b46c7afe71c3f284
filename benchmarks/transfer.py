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
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import data
from harness.aria2 import Aria2, write_hook
from harness.netns import LOOPBACK, free_port
from harness.report import torrentds_source
from harness.servers import Tracker
from harness.session import Runs, guarded, progress, require
from transfer_report import cpu_table, header, transfer_table
from transfer_runs import (
    Context,
    CpuRun,
    Run,
    Scenario,
    failures,
    run_aria2c,
    run_cpu,
    run_torrentds,
)

MIB = 1 << 20
log = progress("transfer")


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
    p.add_argument("--seed", type=int, default=3, help="random seed of the generated data")
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
    tools = ["opentracker", "curl", "sha256sum"]
    require(p, tools + (["aria2c"] if "aria2c" in args.tools else []))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.load_before = os.getloadavg()
    need = args.size_mb * MIB * (2 + max(args.n)) + 512 * MIB
    return guarded(
        "transfer",
        lambda work: run(args, work),
        log,
        parent=args.workdir,
        need_bytes=need,
        keep=args.keep,
    )


def make_dataset(args: argparse.Namespace, work: Path, tracker: Tracker) -> data.Dataset:
    """Random 1 MiB files packed by ``torrentds create`` into shards of ``--shard-size``."""
    raw = work / "raw" / "bench"
    data.write_files(raw / "train", args.size_mb * MIB, MIB, random.Random(args.seed))
    origin = work / "origin" / "bench"
    ds = data.create(
        raw,
        work / "bench.torrent",
        tracker.url,
        *("--shards-dir", str(origin), "--shard-size", args.shard_size, "--name", "bench"),
    )
    shutil.rmtree(work / "raw")
    if ds.folder != origin:
        raise RuntimeError(f"dataset landed in {ds.folder}, expected {origin}")
    return ds


def run(args: argparse.Namespace, work: Path) -> int:
    args.source = torrentds_source(args.rev, work / "src")
    log(f"torrentds: {args.source}")
    tracker = Tracker(LOOPBACK, free_port())
    log(f"writing {args.size_mb} MiB of random files and packing them with torrentds create")
    t0 = time.perf_counter()
    ds = make_dataset(args, work, tracker)
    log(f"  {ds} ({time.perf_counter() - t0:.1f} s)")
    aria2 = Aria2(ds.torrent, tracker.url, None, pex=False)
    ctx = Context(args, ds, tracker, aria2, write_hook(work))
    scenarios = {(tool, n): Scenario(tool, n) for n in args.n for tool in args.tools}
    cpu_runs: list[CpuRun] = []
    runs = Runs(work, args.keep, args.repeat, log)
    for rep in range(args.repeat):
        for case, run_dir in runs.cases(rep, args.n, args.tools):
            result = RUNNERS[case.kind](ctx, case.n, run_dir)
            scenarios[(case.kind, case.n)].runs.append(result)
            log_run(result)
        for check in [] if args.no_cpu else ["checked", "skip-check"]:
            what = f"torrentds seeder ({check}) at --max-upload {args.max_upload}"
            with runs.folder(rep, what, f"cpu-{check}") as run_dir:
                cpu_runs.append(run_cpu(ctx, run_dir, check))
            log_cpu(cpu_runs[-1])
    lines = header(args, ds) + transfer_table(list(scenarios.values()), ds)
    if cpu_runs:
        lines += cpu_table(cpu_runs, args.max_upload, ds)
    print("\n".join(lines))
    return 1 if failures(list(scenarios.values()), cpu_runs) else 0


RUNNERS: dict[str, Callable[[Context, int, Path], Run]] = {
    "torrentds": run_torrentds,
    "aria2c": run_aria2c,
}


def log_run(result: Run) -> None:
    times = ", ".join(f"{t:.1f}" for t in result.times)
    log(
        f"  times [{times}] s"
        + (f", seeder uploaded {result.note} " if result.note else " ")
        + (f"FAILED {result.error}" if result.error else "verified")
    )


def log_cpu(cpu: CpuRun) -> None:
    log(
        f"  leecher {cpu.leecher_s:.1f} s, CPU {cpu.cpu_pct:.1f}%, VmHWM {cpu.hwm_mb:.0f} MB, "
        f"RssAnon {cpu.anon_mb:.0f} MB, RssFile {cpu.file_mb:.0f} MB {cpu.error or ''}"
    )


if __name__ == "__main__":
    sys.exit(main())
