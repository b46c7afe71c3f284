"""Shard-count scaling: one ``get`` of the same bytes cut into 16 … 4,096 shards, on 127.0.0.1.

For each shard count in ``--shards``: ``--size-mb`` MiB of random samples written as that
many WebDataset shards and adopted by ``torrentds create`` (no trackers), then one
``torrentds seed --skip-check`` and one ``torrentds get`` from it alone, timed from the
get's start to its ``completed`` event (every shard's sha256 checked and logged). The get's
CPU time is its rusage once reaped; the ready lag is each shard's ``lag`` (from its last
piece passing to its line in the ready log). ``--repeat`` runs each count again; medians.

Network isolation: ``--listen 127.0.0.1:0``, DHT/LSD/UPnP off, no trackers, the only peer
named by ``--peer``. Run with the project's venv::

    .venv/bin/python benchmarks/scale.py [--size-mb 2048] [--shards 16 256 1024 4096]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from pathlib import Path

from harness import data
from harness.procs import Procs, sh, stop_seeder, torrentds_cmd
from harness.report import fmt, machine, median, now, row, table, torrentds_source
from harness.session import guarded, progress

MIB = 1 << 20
ISOLATED = ("--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp", "--json")
log = progress("scale")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=2048, help="dataset size in MiB (2048)")
    p.add_argument(
        "--shards", type=int, nargs="+", default=[16, 256, 1024, 4096], help="shard counts"
    )
    p.add_argument("--repeat", type=int, default=2, help="runs per count; medians (2)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per get (900)")
    p.add_argument("--rev", help="run torrentds as committed at this git revision")
    p.add_argument("--workdir", type=Path, help="parent of the temp dir (default /tmp)")
    args = p.parse_args(argv)
    if min(args.size_mb, args.repeat, *args.shards) < 1:
        p.error("--size-mb, --repeat and --shards must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    need = 3 * args.size_mb * MIB + 256 * MIB
    return guarded(
        "scale", lambda work: run(args, work), log, parent=args.workdir, need_bytes=need, keep=False
    )


def make_dataset(args: argparse.Namespace, work: Path, shards: int) -> tuple[Path, Path]:
    """``shards`` shards of about equal size; returns (the dataset folder, its .torrent)."""
    folder = work / f"origin-{shards}" / "scale"
    per_shard = args.size_mb * MIB // shards
    sample = min(per_shard, 64 << 10)
    plan = data.even_plan(args.size_mb * MIB, sample, max(1, per_shard // sample))
    data.write_shards(folder / "train", plan, random.Random(shards))
    torrent = work / f"scale-{shards}.torrent"
    sh(torrentds_cmd("create", str(folder), "--no-default-trackers", "-o", str(torrent)), 1800)
    return folder, torrent


def one_get(
    args: argparse.Namespace, work: Path, folder: Path, torrent: Path, tag: str
) -> dict[str, float]:
    """One seeder, one get; the get's seconds to completion, first shard and CPU."""
    logs = work / f"logs-{tag}"
    logs.mkdir()
    with Procs(logs) as procs:
        seeder = procs.torrentds(
            "seeder", ["seed", str(folder), str(torrent), "--skip-check", *ISOLATED]
        )
        port = int(seeder.wait_event("started", 60)["listen_port"])
        t0 = time.monotonic()
        get = procs.torrentds(
            "get",
            [
                "get",
                str(torrent),
                "-d",
                str(work / f"got-{tag}"),
                *ISOLATED,
                "--peer",
                f"127.0.0.1:{port}",
            ],
        )
        get.wait_event("completed", args.timeout)
        took = time.monotonic() - t0
        ready = [e for e in get.events if e.get("event") == "shard_ready"]
        first = min(float(e["time"]) for e in ready)
        lags = sorted(float(e["lag"]) for e in ready if e.get("lag") is not None)
        started = float(get.events[0]["time"])
        get.wait_event("done", 60)
        deadline = time.monotonic() + 30
        while get.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_seeder(seeder)
    return {
        "seconds": took,
        "first": first - started,
        "cpu": get.rusage_s,
        # From a shard's last piece to its ready line (absent from torrentds before 7).
        "lag_p50": lags[len(lags) // 2] if lags else float("nan"),
        "lag_p99": lags[min(len(lags) - 1, len(lags) * 99 // 100)] if lags else float("nan"),
        "lag_max": lags[-1] if lags else float("nan"),
    }


def run(args: argparse.Namespace, work: Path) -> int:
    source = torrentds_source(args.rev, work / "src")
    log(f"torrentds: {source}")
    results: dict[int, list[dict[str, float]]] = {}
    for shards in args.shards:
        log(f"{shards} shards: writing {args.size_mb} MiB and creating the torrent")
        folder, torrent = make_dataset(args, work, shards)
        for rep in range(args.repeat):
            got = one_get(args, work, folder, torrent, f"{shards}-{rep}")
            log(f"  run {rep + 1}: {got['seconds']:.1f} s, CPU {got['cpu']:.1f} s")
            results.setdefault(shards, []).append(got)
            sh(["rm", "-rf", str(work / f"got-{shards}-{rep}")])
        sh(["rm", "-rf", str(folder.parent)])
    report(args, source, results)
    return 0


def report(
    args: argparse.Namespace, source: str, results: dict[int, list[dict[str, float]]]
) -> None:
    print(f"# get over the shard count ({now()})\n")
    print(f"- machine: {machine()}\n- torrentds: {source}")
    print(f"- {args.size_mb} MiB on 127.0.0.1, one seeder, one get; medians of {args.repeat}\n")
    size = args.size_mb * MIB
    base = median(size / r["seconds"] for r in results[min(results)])
    header = ["shards", "complete (s)", "MB/s", "vs fewest", "get CPU (s)", "first shard (s)"]
    header += ["ready lag p50 / p99 / max (s)"]
    for line in table(header, "rrrrrrr"):
        print(line)
    for shards, runs in sorted(results.items()):
        rate = median(size / r["seconds"] for r in runs)
        print(
            row(
                [
                    shards,
                    fmt(median(r["seconds"] for r in runs), ".1f"),
                    fmt(rate / 1e6 if rate else None, ".0f"),
                    fmt(rate / base if rate and base else None, ".2f"),
                    fmt(median(r["cpu"] for r in runs), ".1f"),
                    fmt(median(r["first"] for r in runs), ".1f"),
                    " / ".join(
                        fmt(median(r[k] for r in runs), ".2f")
                        for k in ("lag_p50", "lag_p99", "lag_max")
                    ),
                ]
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
