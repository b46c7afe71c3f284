"""The markdown ``transfer.py`` prints: its header, the transfer table, the seeder's cost."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence

from harness.data import Dataset
from harness.procs import torrentds_cmd
from harness.report import (
    failed_row,
    fmt,
    libtorrent_version,
    machine,
    now,
    opentracker_version,
    row,
    table,
    tool_version,
)
from transfer_runs import CpuRun, Scenario

CPU_NOTE = (
    "Targets (issue 3): ≤ 10% of one core, ≤ 200 MB RSS. CPU = utime+stime of the "
    "seeder process (/proc/PID/stat) from the leecher's launch to its completion, as a "
    "share of that wall time; the main thread (/proc/PID/task/PID/stat) runs torrentds' "
    "Python loop, the rest is libtorrent's threads. RSS from /proc/PID/status, sampled "
    'every 0.2 s; VmHWM is the kernel\'s own peak. "checked": the seeder hash-checked '
    "the folder before the clock started (the default of `torrentds seed`); "
    '"skip-check": it trusts the folder and libtorrent hashes each piece the first '
    "time a peer asks for it, while serving."
)


def header(args: argparse.Namespace, ds: Dataset) -> list[str]:
    before = ", ".join(f"{x:.2f}" for x in args.load_before)
    after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        "### transfer on loopback: torrentds vs aria2c",
        "",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- python: {platform.python_version()} ({sys.executable})",
        f"- torrentds source: {args.source}",
        f"- tools: {tool_version(torrentds_cmd('--version'))}, libtorrent "
        f"{libtorrent_version()}; {tool_version(['aria2c', '--version'])}; "
        f"{opentracker_version()}",
        f"- data: {ds.size / 1e6:,.0f} MB ({ds.size:,} bytes) in {ds.shards} shards, "
        f"{ds.pieces} pieces of {ds.piece_size // 1024} KiB; origin files in page cache",
        f"- runs per case: {args.repeat} (median of the last leecher's time); MB = 10^6 bytes; "
        "the clock starts when the leechers are launched (seeder already announced) and "
        "includes process start-up",
        f"- load average (1, 5, 15 min): {before} before the first run, {after} after the last",
        "",
    ]


def _span(times: Sequence[float]) -> str:
    lo, hi = min(times), max(times)
    return f"{hi:.1f}" if len(times) == 1 else f"{lo:.1f}–{hi:.1f}"


def transfer_table(scenarios: Sequence[Scenario], ds: Dataset) -> list[str]:
    out = ["#### time until the last leecher has every byte verified", ""]
    out += table(
        [
            *("tool", "leechers", "runs ok", "time (s, median)"),
            *("first–last leecher done (s), per run", "MB/s per leecher", "aggregate MB/s"),
        ],
        "lrrrlrr",
    )
    for s in scenarios:
        med = s.median
        per = ds.size / 1e6 / med if med else None
        agg = per * s.n if per is not None else None
        finish = "; ".join(_span(r.times) for r in s.ok) if s.ok else "—"
        out.append(
            row(
                [
                    *(s.tool, s.n, f"{len(s.ok)}/{len(s.runs)}", f"**{fmt(med, '.2f')}**"),
                    *(finish, fmt(per, ".0f"), fmt(agg, ".0f")),
                ]
            )
        )
        out += [failed_row(r.error, 7) for r in s.runs if r.error]
    out.append("")
    by = {(s.tool, s.n): s.median for s in scenarios}
    for n in sorted({s.n for s in scenarios}):
        a, b = by.get(("torrentds", n)), by.get(("aria2c", n))
        if a and b:
            verdict = "about the same" if abs(a / b - 1) < 0.03 else "faster" if a < b else "slower"
            out.append(f"- N={n}: torrentds / aria2c time = **{a / b:.2f}×** ({verdict})")
    for s in scenarios:
        notes = [r.note for r in s.ok if r.note]
        if notes:
            out.append(f"- {s.tool} N={s.n}: the seeder uploaded {', '.join(notes)} the dataset")
    return [*out, ""]


def cpu_table(runs: Sequence[CpuRun], max_upload: str, ds: Dataset) -> list[str]:
    out = [f"#### torrentds seeder at --max-upload {max_upload}, serving one leecher", ""]
    out += table(
        [
            *("seeder started", "runs ok", "leecher time (s)", "leecher MB/s"),
            *("seeder CPU (% of one core)", "of which Python main thread (%)"),
            *("CPU s per GB sent", "peak RSS, VmHWM (MB)", "peak RssAnon (MB)"),
            *("peak RssFile (MB)", "idle RSS (MB)"),
        ],
        "lrrrrrrrrrr",
    )
    checks = list(dict.fromkeys(r.check for r in runs))
    for check in checks:
        mine = [r for r in runs if r.check == check]
        ok = [r for r in mine if r.error is None]

        def med(get: Callable[[CpuRun], float], ok: list[CpuRun] = ok) -> float | None:
            return statistics.median(get(r) for r in ok) if ok else None

        t = med(lambda r: r.leecher_s)
        out.append(
            row(
                [
                    *(check, f"{len(ok)}/{len(mine)}", fmt(t, ".1f")),
                    fmt(ds.size / 1e6 / t if t else None, ".1f"),
                    f"**{fmt(med(lambda r: r.cpu_pct), '.1f')}**",
                    fmt(med(lambda r: r.main_pct), ".1f"),
                    fmt(med(lambda r: r.cpu_s_per_gb), ".2f"),
                    f"**{fmt(med(lambda r: r.hwm_mb), '.0f')}**",
                    *(fmt(med(lambda r: r.anon_mb), ".0f"), fmt(med(lambda r: r.file_mb), ".0f")),
                    fmt(med(lambda r: r.idle_rss_mb), ".0f"),
                ]
            )
        )
    if len(runs) > len(checks):
        per_run = "; ".join(
            f"{r.check} {r.leecher_s:.1f} s, {r.cpu_pct:.1f}%, {r.hwm_mb:.0f} MB"
            for r in runs
            if r.error is None
        )
        out += ["", f"Per run (leecher time, seeder CPU, VmHWM): {per_run}"]
    for r in runs:
        if r.error:
            out += ["", f"FAILED: {r.error.splitlines()[0][:300]}"]
    return [*out, "", CPU_NOTE, ""]
