"""The markdown ``swarm.py`` prints: how it ran, the table per way and N, time to the first
shard, the bounds, and the targets of issue 5."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.data import Dataset
from harness.procs import torrentds_cmd
from harness.report import (
    failed_row,
    fmt,
    libtorrent_version,
    machine,
    median,
    now,
    opentracker_version,
    row,
    table,
    tool_version,
)
from swarm_run import RunResult
from swarm_ways import TORRENTDS_WAYS, WAY_LABELS, WAYS


@dataclass(frozen=True)
class Bound:
    """The lower bounds for F = ``size`` bytes from an origin of ``seed_bps`` bytes/s to N
    leechers of ``peer_bps`` each."""

    size: int
    seed_bps: float
    peer_bps: float

    @classmethod
    def of(cls, args: argparse.Namespace, size: int) -> Bound:
        return cls(size, args.seed_cap_mbit * 1e6 / 8, args.cap_mbit * 1e6 / 8)

    def t_min(self, n: float) -> float:
        """Kumar–Ross: max(F/u_s, N·F/(u_s + Σu_i))."""
        return max(self.size / self.seed_bps, n * self.size / (self.seed_bps + n * self.peer_bps))

    def http(self, n: float) -> float:
        """One origin sending every copy: N·F/u_s."""
        return n * self.size / self.seed_bps


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


def summarize(results: Sequence[RunResult], size: int) -> list[Summary]:
    """Medians over the verified runs of each way and N."""
    out = []
    keys = sorted({(r.way, r.n) for r in results}, key=lambda k: (WAYS.index(k[0]), k[1]))
    for way, n in keys:
        runs = [r for r in results if (r.way, r.n) == (way, n)]
        ok = [r for r in runs if r.error is None]
        out.append(
            Summary(
                way=way,
                n=n,
                runs=len(runs),
                ok=len(ok),
                t=median(r.t for r in ok),
                egress=median(r.egress / size for r in ok),
                payload=median(r.payload / size for r in ok if r.payload is not None),
                cpu=median(r.cpu for r in ok),
                origin_cpu=median(r.origin_cpu for r in ok),
                first_shard=median(max(r.first_shard) for r in ok if r.first_shard),
                first_shard_median=median(
                    statistics.median(r.first_shard) for r in ok if r.first_shard
                ),
                errors=[r.error for r in runs if r.error],
                times=[sorted(r.times) for r in ok],
            )
        )
    return out


def report(
    args: argparse.Namespace,
    ds: Dataset,
    summaries: Sequence[Summary],
    plot: Path | None,
    results: Sequence[RunResult],
) -> str:
    bound = Bound.of(args, ds.size)
    lines = [*how(args, ds, results), "", *main_table(summaries, bound), ""]
    ns = sorted({s.n for s in summaries})
    wire = (args.mtu + 14) / (args.mtu - 52)
    lines += [
        f"HTTP bound N·F/u_s: {', '.join(f'N={n}: {bound.http(n):.1f} s' for n in ns)}. "
        f"Wire floor: at MTU {args.mtu} a full TCP segment carries {args.mtu - 52} payload "
        f"bytes in a {args.mtu + 14}-byte frame, so even a perfect transfer shows egress ≥ "
        f"{wire:.3f} copies and T/T_min ≥ {wire:.3f} against the nominal cap.",
        "",
    ]
    lines += first_shard_table(summaries)
    if args.ttfs:
        lines += [*ttfs_detail(results, ds.shards), ""]
    lines += targets(summaries, bound)
    if plot is not None:
        lines += ["", f"![T vs N]({plot.name})"]
    return "\n".join(lines)


def how(args: argparse.Namespace, ds: Dataset, results: Sequence[RunResult]) -> list[str]:
    """The list above the tables: when, where, what ran, on which network and data."""
    lines = [
        f"- date: {now()}",
        f"- machine: {machine()}, python {platform.python_version()}",
        f"- command: `{' '.join(['benchmarks/swarm.py', *args.argv])}`",
        f"- torrentds source: {args.source}",
        f"- tools: {tool_version(torrentds_cmd('--version'))} (libtorrent {libtorrent_version()}"
        f"); {tool_version(['aria2c', '--version'])}; {tool_version(['nginx', '-v'])}; "
        f"{' '.join(tool_version(['curl', '--version']).split()[:2])}; {opentracker_version()}",
        f"- network: one namespace per host on a bridge namespace, {args.subnet}.0/24, MTU "
        f"{args.mtu}, no default route; egress caps `tc tbf rate R burst 32kbit latency 50ms`: "
        f"origin {args.seed_cap_mbit:g} Mbit/s, each leecher {args.cap_mbit:g} Mbit/s "
        "(downloads uncapped)"
        + (
            f"; `netem delay {args.delay_ms:g}ms` before each cap ({2 * args.delay_ms:g} ms "
            "round trip between hosts)"
            if args.delay_ms
            else ""
        ),
        f"- data F: {ds.size:,} bytes ({ds.size / 1e6:,.1f} MB): {ds.shards} WebDataset shards "
        f"of ~{args.shard_mb} MiB (random 1 MiB samples), {ds.pieces} pieces of "
        f"{ds.piece_size // 1024} KiB, adopted by `torrentds create`; origin files in page cache",
        f"- torrentds variant: {variant(args)}",
        f"- runs per case: {args.repeat}; medians. The clock starts when the leechers are "
        "launched (origin already serving) and includes process start-up; T = the last "
        "leecher's completion. Every leecher's copy passed `sha256sum -c SHA256SUMS` before "
        "its run counted.",
    ]
    loads = [r.load1 for r in results]
    if loads:
        lines.append(
            f"- 1-minute load average when the runs started: {min(loads):.1f}–{max(loads):.1f} "
            f"(median {statistics.median(loads):.1f}) on {os.cpu_count()} cores"
        )
    return lines


def variant(args: argparse.Namespace) -> str:
    """How the torrentds processes were asked to differ from the defaults, in words."""
    said = []
    if args.window is not None:
        said.append(f"get --window {args.window}")
    if args.seed_max_upload:
        said.append(f"seed --max-upload {args.seed_max_upload}")
    if args.ranked:
        said.append("leechers: get --rank i --world-size N (each node's shards first)")
    elif args.no_slice:
        said.append("leechers: plain get, no --slice (the peer index dealt by the swarm)")
    if args.kill_at is not None:
        said.append(
            f"leecher 0 killed (SIGKILL) once a leecher had {args.kill_at:.0%} of the shards; "
            "T, egress and the copies checked are the other leechers'"
        )
    if args.late_at is not None:
        said.append(f"the last leecher started once another had {args.late_at:.0%} of the shards")
    return "; ".join(said) if said else "defaults (none)"


def main_table(summaries: Sequence[Summary], bound: Bound) -> list[str]:
    lines = table(
        [
            *("way", "N", "runs ok", "T (s)", "T_min (s)", "T/T_min"),
            *("origin egress (copies, wire)", "origin payload (copies)", "CPU s (all)"),
            *("CPU s (origin)", "leecher finish times (s)"),
        ],
        "lrrrrrrrrrl",
    )
    for s in summaries:
        t_min = bound.t_min(s.n)
        ratio = s.t / t_min if s.t is not None else None
        finish = "; ".join(", ".join(f"{t:.1f}" for t in ts) for ts in s.times) or "—"
        lines.append(
            row(
                [
                    *(WAY_LABELS[s.way], s.n, f"{s.ok}/{s.runs}", f"**{fmt(s.t, '.1f')}**"),
                    *(f"{t_min:.1f}", f"**{fmt(ratio, '.2f')}**", fmt(s.egress, ".2f")),
                    *(fmt(s.payload, ".2f"), fmt(s.cpu, ".1f"), fmt(s.origin_cpu, ".1f"), finish),
                ]
            )
        )
        lines += [failed_row(e, 11) for e in s.errors]
    return lines


def first_shard_table(summaries: Sequence[Summary]) -> list[str]:
    ttfs = [s for s in summaries if s.way in TORRENTDS_WAYS and s.first_shard]
    if not ttfs:
        return []
    lines = ["Time to first verified shard vs time to complete (torrentds ways):", ""]
    lines += table(
        [
            *("way", "N", "first shard, median leecher (s)", "first shard, slowest leecher (s)"),
            *("complete, last leecher (s)", "first shard / complete"),
        ],
        "lrrrrr",
    )
    for s in ttfs:
        share = s.first_shard / s.t if s.first_shard is not None and s.t else None
        lines.append(
            row(
                [
                    *(WAY_LABELS[s.way], s.n, fmt(s.first_shard_median, ".1f")),
                    *(fmt(s.first_shard, ".1f"), fmt(s.t, ".1f"), fmt(share, ".2f")),
                ]
            )
        )
    return [*lines, ""]


def ttfs_detail(results: Sequence[RunResult], shards: int) -> list[str]:
    """Per leecher: when its first, a quarter, half and all of its shards were verified."""
    lines = [
        f"Per leecher (`--ttfs`): seconds from the start until k of its {shards} shards were "
        "verified (sha256 against the manifest, logged to its ready log).",
        "",
        *table(
            ["way", "N", "run", "leecher", "first shard", "25%", "50%", "75%", "all (complete)"],
            "lrrrrrrrr",
        ),
    ]
    runs: dict[tuple[str, int], int] = {}
    for r in results:
        if r.error is not None or not r.shard_times:
            continue
        k = runs[(r.way, r.n)] = runs.get((r.way, r.n), 0) + 1
        for i, ts in enumerate(r.shard_times):
            if ts:
                at = [f"{ts[max(0, math.ceil(q * len(ts)) - 1)]:.1f}" for q in (0.25, 0.5, 0.75)]
                cells = [WAY_LABELS[r.way], r.n, k, i, f"{ts[0]:.1f}", *at, f"{r.times[i]:.1f}"]
                lines.append(row(cells))
    return lines


def targets(summaries: Sequence[Summary], bound: Bound) -> list[str]:
    by = {(s.way, s.n): s for s in summaries}
    n = max(s.n for s in summaries)
    out = [f"Targets of issue 5 (N = {n}):", ""]

    def check(label: str, value: float | None, limit: float, unit: str = "") -> None:
        if value is None:
            out.append(f"- {label}: not measured")
            return
        verdict = "met" if value <= limit else "**not met**"
        out.append(f"- {label}: {value:.2f}{unit} (target ≤ {limit:g}{unit}): {verdict}")

    tds, web, http = by.get(("torrentds", n)), by.get(("webseed", n)), by.get(("http", n))
    check("torrentds T/T_min", tds.t / bound.t_min(n) if tds and tds.t else None, 1.15)
    check("torrentds origin egress, seeder origin", tds.egress if tds else None, 1.15, " copies")
    check(
        "torrentds origin egress, web-seed-only origin", web.egress if web else None, 1.3, " copies"
    )
    if http and http.egress is not None:
        out.append(f"- HTTP origin egress: {http.egress:.2f} copies")
    for k in sorted({s.n for s in summaries}):
        a, b = by.get(("torrentds", k)), by.get(("aria2c", k))
        if a and b and a.t is not None and b.t is not None:
            verdict = "met" if a.t <= b.t else "**not met**"
            out.append(f"- N={k}: torrentds T {a.t:.1f} s vs aria2c T {b.t:.1f} s: {verdict}")
    return out


def dump_json(path: Path, size: int, argv: list[str], results: Sequence[RunResult]) -> None:
    """Every run's raw result (written after each run: a stopped benchmark keeps its data)."""
    data = {"size": size, "args": argv, "runs": [asdict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1))
