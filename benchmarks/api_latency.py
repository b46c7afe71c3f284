"""Sidecar API latency while a download runs: GET /status, /shards and /metrics.

One run, on 127.0.0.1 only:

1. writes ``--shards`` WebDataset tar shards of ``--shard-kib`` KiB each and adopts them
   with ``torrentds create`` (no trackers at all);
2. starts ``torrentds seed`` on them and ``torrentds get --api`` fetching them from that
   seeder alone (``--max-download`` stretches the download so that reads overlap it);
3. from the moment the API answers until the get says ``completed`` (phase
   "downloading"), then for ``--idle-seconds`` while it seeds to nobody (phase "idle"),
   ``--readers`` threads each loop over GET /status, /shards and /metrics; every answer is
   timed (``time.perf_counter`` around the whole request on a kept-alive connection).

Prints the latency per phase and route (count, p50, p99, max, in ms). ``--rev REV`` runs
torrentds as committed at REV (to compare before and after a change). Network isolation:
``--listen 127.0.0.1:0``, DHT/LSD/UPnP off, no trackers, the only peer named by ``--peer``.
Run with the project's venv::

    .venv/bin/python benchmarks/api_latency.py [--shards 2048] [--shard-kib 128]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import requests
from harness import data
from harness.netns import free_port
from harness.procs import Procs, sh, torrentds_cmd
from harness.report import fmt, machine, now, row, table, torrentds_source
from harness.session import guarded, progress

ISOLATED = ("--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp", "--json")
ROUTES = ("/status", "/shards", "/metrics")
log = progress("api_latency")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shards", type=int, default=2048, help="shards in the dataset (2048)")
    p.add_argument("--shard-kib", type=int, default=128, help="size of each shard (128)")
    p.add_argument("--max-download", default="16M", help="the get's download cap (16M)")
    p.add_argument("--readers", type=int, default=2, help="threads reading the API (2)")
    p.add_argument("--idle-seconds", type=float, default=10, help="reads while seeding (10)")
    p.add_argument("--timeout", type=float, default=600, help="seconds for the download (600)")
    p.add_argument("--rev", help="run torrentds as committed at this git revision")
    p.add_argument("--workdir", type=Path, help="parent of the temp dir (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args(argv)
    if min(args.shards, args.shard_kib, args.readers) < 1:
        p.error("--shards, --shard-kib and --readers must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    need = 3 * args.shards * args.shard_kib * 1024 + (64 << 20)
    return guarded(
        "api", lambda work: run(args, work), log, parent=args.workdir, need_bytes=need, keep=False
    )


def make_dataset(args: argparse.Namespace, work: Path) -> Path:
    """The shards, adopted in place by ``torrentds create``; returns the .torrent."""
    folder = work / "origin" / "api-bench"
    sample = 16 << 10
    plan = data.even_plan(
        args.shards * args.shard_kib * 1024, sample, args.shard_kib * 1024 // sample
    )
    data.write_shards(folder / "train", plan, random.Random(7))
    torrent = work / "api-bench.torrent"
    cmd = torrentds_cmd(
        "create", str(folder), "--no-default-trackers", "-o", str(torrent), "--json"
    )
    made = json.loads(sh(cmd, timeout=600))
    log(f"  {made['shards']} shards, {made['bytes']:,} bytes, {made['pieces']} pieces")
    return torrent


class Reader(threading.Thread):
    """GETs the routes in turn until ``stop``; keeps each (phase, route)'s latencies
    (seconds), the phase being ``phase[0]`` when the request started."""

    def __init__(self, base: str, stop: threading.Event, phase: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.stop, self.phase = base, stop, phase
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self.errors = 0

    def run(self) -> None:
        with requests.Session() as http:
            http.trust_env = False
            while not self.stop.is_set():
                for route in ROUTES:
                    phase = self.phase[0]
                    t0 = time.perf_counter()
                    try:
                        ok = http.get(self.base + route, timeout=30).status_code == 200
                    except requests.RequestException:
                        ok = False
                    if ok:
                        took = time.perf_counter() - t0
                        self.seconds.setdefault((phase, route), []).append(took)
                    else:
                        self.errors += 1


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace, work: Path) -> int:
    source = torrentds_source(args.rev, work / "src")
    log(f"torrentds: {source}")
    torrent = make_dataset(args, work)
    api_port = free_port()
    with Procs(work) as procs:
        seeder = procs.torrentds(
            "seeder",
            ["seed", str(work / "origin" / "api-bench"), str(torrent), "--skip-check", *ISOLATED],
        )
        port = int(seeder.wait_event("started", 60)["listen_port"])
        getter = procs.torrentds(
            "get",
            [
                *("get", str(torrent), "-d", str(work / "leecher"), *ISOLATED),
                *("--peer", f"127.0.0.1:{port}", "--max-download", args.max_download),
                *("--api", f"127.0.0.1:{api_port}", "--timeout", str(args.timeout)),
                *("--seed-hours", "1"),
            ],
        )
        getter.wait_event("api", 60)
        stop = threading.Event()
        phase = ["downloading"]
        base = f"http://127.0.0.1:{api_port}"
        readers = [Reader(base, stop, phase) for _ in range(args.readers)]
        t0 = time.monotonic()
        for reader in readers:
            reader.start()
        try:
            getter.wait_event("completed", args.timeout)
            took = time.monotonic() - t0
            phase[0] = "idle"
            stop.wait(args.idle_seconds)
        finally:
            stop.set()
            for reader in readers:
                reader.join(60)
        ready = sum(1 for e in getter.events if e.get("event") == "shard_ready")
    report(args, source, readers, took, ready)
    return 0


def report(
    args: argparse.Namespace, source: str, readers: list[Reader], took: float, ready: int
) -> None:
    print(f"# API latency during a download ({now()})\n")
    print(f"- machine: {machine()}\n- torrentds: {source}")
    print(
        f"- {args.shards} shards of {args.shard_kib} KiB, get capped at {args.max_download}/s, "
        f"{args.readers} reader threads; {ready} shards verified in {took:.1f} s of reads, "
        f"then {args.idle_seconds:g} s idle (seeding to nobody); "
        f"{sum(r.errors for r in readers)} failed requests\n"
    )
    for line in table(["phase", "route", "requests", "p50 ms", "p99 ms", "max ms"], "llrrrr"):
        print(line)
    for key in [(p, route) for p in ("downloading", "idle") for route in ROUTES]:
        ms = [1000 * s for r in readers for s in r.seconds.get(key, [])]
        print(
            row(
                [
                    *key,
                    len(ms),
                    fmt(percentile(ms, 0.5), ".1f"),
                    fmt(percentile(ms, 0.99), ".1f"),
                    fmt(max(ms) if ms else None, ".1f"),
                ]
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
