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
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import data
from harness.aria2 import write_hook
from harness.report import torrentds_source
from harness.session import Runs, guarded, progress, require
from swarm_report import Bound, dump_json, report, summarize
from swarm_run import RunResult, run_once
from swarm_ways import WAYS, Ctx, http_url, tracker_url

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
log = progress("swarm")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=512, help="dataset size in MiB (512)")
    p.add_argument("--shard-mb", type=int, default=32, help="shard size in MiB (32)")
    p.add_argument("--n", type=int, nargs="+", default=[1, 3, 6], help="leecher counts (1 3 6)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; medians (1)")
    p.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    p.add_argument("--cap-mbit", type=float, default=200, help="egress cap per host (200)")
    p.add_argument("--seed-cap-mbit", type=float, help="the origin's cap (default: --cap-mbit)")
    p.add_argument("--mtu", type=int, default=1500, help="MTU of every veth (1500)")
    p.add_argument(
        "--delay-ms", type=float, default=0, help="netem delay on every host's egress (0: none)"
    )
    p.add_argument("--subnet", default="10.213.0", help="the test /24's first three octets")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    p.add_argument("--ready-timeout", type=float, default=60, help="seconds for the origin (60)")
    p.add_argument("--seed", type=int, default=5, help="random seed of the generated data")
    variants = p.add_argument_group("torrentds variants (options of torrentds itself)")
    variants.add_argument(
        "--window",
        type=int,
        help="torrentds get --window (default: its own)",
    )
    variants.add_argument("--seed-max-upload", help="torrentds seed --max-upload RATE")
    variants.add_argument(
        "--slice-count",
        type=int,
        help="K in each leecher's --slice i/K (default N); above N, peers are missing",
    )
    variants.add_argument(
        "--no-slice",
        action="store_true",
        help="torrentds leechers run a plain get (by default leecher i of N gets --slice i/N)",
    )
    variants.add_argument(
        "--ranked",
        action="store_true",
        help="torrentds leechers get --rank i --world-size N, as training nodes would",
    )
    events = p.add_argument_group("what happens to the swarm mid-run (torrentds ways)")
    events.add_argument(
        "--kill-at",
        type=float,
        metavar="F",
        help="SIGKILL leecher 0 once it has verified this fraction of the shards; it is then "
        "not waited for, timed or checked",
    )
    events.add_argument(
        "--late-at",
        type=float,
        metavar="F",
        help="start the last leecher only once another has verified this fraction of the shards",
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
    return p


PRIVATE_24 = r"10\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = parser()
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
    if not re.fullmatch(PRIVATE_24, args.subnet):
        p.error("--subnet must be the first three octets of a private /24")
    for name, value in (("--kill-at", args.kill_at), ("--late-at", args.late_at)):
        if value is not None and not (0 < value < 1 and set(args.ways) <= {"torrentds", "webseed"}):
            p.error(f"{name} wants 0 < F < 1 and torrentds ways only")
    if (args.kill_at is not None or args.late_at is not None) and min(args.n) < 2:
        p.error("--kill-at and --late-at need --n 2 or more")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces, tc)")
    needed = ["ip", "tc", "opentracker", "sha256sum", "curl", "sysctl"]
    needed += ["aria2c"] if "aria2c" in args.ways else []
    needed += ["nginx"] if {"http", "webseed"} & set(args.ways) else []
    require(p, needed)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = f"tdsb-{os.getpid()}-"
    need = args.size_mb * MIB * (1 + max(args.n)) * 1.1 + 256 * MIB
    return guarded(
        "swarm",
        lambda work: run(args, work, prefix),
        log,
        parent=args.workdir,
        need_bytes=need,
        keep=args.keep,
        ns_prefix=prefix,
    )


def make_context(args: argparse.Namespace, work: Path, prefix: str) -> Ctx:
    """The dataset (WebDataset shards of 1 MiB samples, adopted by torrentds create) and its
    two torrents: one naming the tracker, one also naming the origin's nginx as web seed."""
    folder = work / "origin" / "bench"
    plan = data.even_plan(args.size_mb * MIB, MIB, args.shard_mb)
    data.write_shards(folder / "train", plan, random.Random(args.seed))
    tracker = tracker_url(args.subnet)
    ds = data.create(folder, work / "bench.torrent", tracker)
    webseed = work / "bench-webseed.torrent"
    web = ["--web-seed", http_url(args.subnet), "--no-check-web-seeds"]
    if data.create(folder, webseed, tracker, *web).infohash != ds.infohash:
        raise RuntimeError("the web-seed torrent has a different info-hash")
    return Ctx(args, ds, webseed, data.torrent_files(ds.torrent), prefix, write_hook(work))


def run(args: argparse.Namespace, work: Path, prefix: str) -> int:
    args.source = torrentds_source(args.rev, work / "src")
    log(f"torrentds: {args.source}")
    log(f"writing {args.size_mb} MiB as {args.shard_mb} MiB shards; torrentds create")
    t0 = time.perf_counter()
    ctx = make_context(args, work, prefix)
    ds = ctx.ds
    log(f"  {ds} ({time.perf_counter() - t0:.1f} s)")
    bound = Bound.of(args, ds.size)
    results: list[RunResult] = []
    runs = Runs(work, args.keep, args.repeat, log)
    for rep in range(args.repeat):
        for case, run_dir in runs.cases(rep, args.n, args.ways):
            results.append(run_once(ctx, case.kind, case.n, run_dir))
            if args.json_out is not None:  # after every run: a stopped run keeps its data
                dump_json(args.json_out, ds.size, args.argv, results)
            log_run(results[-1], bound)
    summaries = summarize(results, ds.size)
    plot = None
    if not args.no_plot:
        from swarm_plot import draw  # matplotlib: the bench extra

        plot = args.plot
        draw(plot, summaries, bound)
        log(f"plot: {plot}")
    text = report(args, ds, summaries, plot, results)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n")
    return 1 if any(r.error for r in results) else 0


def log_run(result: RunResult, bound: Bound) -> None:
    size = bound.size
    payload = f"{result.payload / size:.2f}" if result.payload is not None else "—"
    log(
        f"  T {result.t:.1f} s (T/T_min {result.t / bound.t_min(result.n):.2f}), egress "
        f"{result.egress / size:.2f} copies (payload {payload}), CPU "
        f"{result.cpu:.1f} s (origin {result.origin_cpu:.1f}) "
        + (f"FAILED {result.error}" if result.error else "verified")
    )


if __name__ == "__main__":
    sys.exit(main())
