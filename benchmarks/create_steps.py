"""The timed steps of ``create.py``: the commands, how each is timed, and the table."""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.report import fmt, row, table

MIB = 1 << 20
TRACKER = "http://127.0.0.1:6969/announce"  # written into the .torrent files, never asked
READ_CHUNK = 4 * MIB


class ToolFailed(Exception):
    """A timed command exited non-zero; carries its command line and stderr."""

    def __init__(self, cmd: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(cmd)} exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


@dataclass
class Row:
    step: str
    command: str
    data_bytes: int
    times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None

    @property
    def mb_per_s(self) -> float | None:
        med = self.median
        return self.data_bytes / 1e6 / med if med else None


def read_all(paths: Sequence[Path]) -> int:
    """Read every file once (fills the page cache); returns the bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(READ_CHUNK):
                total += len(chunk)
    return total


def cached_fraction(paths: Sequence[Path]) -> float | None:
    """Share of the files' bytes resident in page cache, from util-linux ``fincore``."""
    if shutil.which("fincore") is None or not paths:
        return None
    proc = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    res = size = 0
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            res += int(parts[0])
            size += int(parts[1])
    return res / size if size else None


def run_timed(cmd: Sequence[str]) -> float:
    """Wall-clock seconds of one subprocess run, output discarded; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise ToolFailed(cmd, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return elapsed


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


@dataclass
class Step:
    """One timed command, what to do untimed before it, and its row of the table."""

    cmd: list[str]
    row: Row
    before: Callable[[], None] | None = None

    def clean(self) -> None:
        if self.before is not None:
            self.before()

    def measure(self) -> None:
        """Run ``before`` (untimed) then the command (timed); record the time or failure."""
        if self.row.error is not None:
            return
        self.clean()
        try:
            self.row.times.append(run_timed(self.cmd))
        except ToolFailed as exc:
            self.row.error = f"exit {exc.code}: {exc.stderr.strip() or '(no stderr)'}"
            print(f"FAILED {' '.join(self.cmd)}\n{exc.stderr}", file=sys.stderr)


def hashlib_rate(names: Sequence[str], total: int = 512 * MIB) -> float:
    """MB/s of hashing ``total`` bytes with every algorithm in ``names``, one core."""
    buf = os.urandom(READ_CHUNK)
    start = time.perf_counter()
    for _ in range(total // len(buf)):
        for name in names:
            hashlib.new(name, buf).digest()
    return total / 1e6 / (time.perf_counter() - start)


def results_table(rows: Sequence[Row]) -> list[str]:
    lines = table(
        ["step", "command", "data (MB)", "runs", "time (s, median)", "MB/s (median)"], "llrrrr"
    )
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r.times) if len(r.times) > 1 else str(len(r.times))
        speed = f"**{fmt(r.mb_per_s, '.0f')}**" if r.error is None else f"FAILED ({r.error})"
        cells = [r.step, f"`{r.command}`", f"{r.data_bytes / 1e6:,.0f}", runs]
        lines.append(row([*cells, fmt(r.median, ".2f"), speed]))
    return lines
