"""What a benchmark report says besides its numbers: the machine, the tools and their
versions, which torrentds ran; and the markdown tables and number formats they share."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from harness.procs import sh

ROOT = Path(__file__).resolve().parents[2]  # the repository


def tool_version(cmd: Sequence[str]) -> str:
    """The first line ``cmd`` prints (its version), or why there is none."""
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def libtorrent_version() -> str:
    return tool_version([sys.executable, "-c", "import libtorrent; print(libtorrent.__version__)"])


def opentracker_version() -> str:
    """opentracker prints no version; the Debian package's."""
    return (
        f"opentracker (Debian {tool_version(['dpkg-query', '-W', '-f=${Version}', 'opentracker'])})"
    )


def _proc_line(path: str, key: str) -> str | None:
    """The value after ``key:`` in a ``/proc`` file of ``key: value`` lines."""
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _proc_line("/proc/cpuinfo", "model name") or platform.processor() or "unknown"


def mem_total() -> str:
    kib = _proc_line("/proc/meminfo", "MemTotal:")
    return f"{int(kib.split()[0]) / 1024**2:.1f} GiB" if kib else "unknown"


def machine() -> str:
    """nproc, CPU, RAM, kernel: one line."""
    return (
        f"nproc {os.cpu_count()}, {cpu_model()}, {mem_total()} RAM, "
        f"{platform.system()} {platform.release()}"
    )


def now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def torrentds_source(rev: str | None, dest: Path) -> str:
    """Which torrentds the benchmark's processes run, said in words. With ``rev``, the
    package as committed there is ``git archive``d into ``dest`` and put first on PYTHONPATH,
    so every ``python -m torrentds`` started afterwards imports it rather than the tree."""
    git = ["git", "-C", str(ROOT)]
    if rev is None:
        head = sh([*git, "rev-parse", "--short", "HEAD"], check=False).strip()
        dirty = sh([*git, "status", "--porcelain", "--", "torrentds"], check=False).strip()
        state = "with uncommitted changes in torrentds/" if dirty else "clean"
        return f"working tree {ROOT} (HEAD {head}, {state})"
    full = sh([*git, "rev-parse", "--verify", f"{rev}^{{commit}}"]).strip()
    dest.mkdir(parents=True)
    archive = subprocess.run(
        [*git, "archive", full, "torrentds"], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    # PYTHONPATH comes before the editable install's finder (appended to sys.meta_path), so
    # ``-m torrentds`` uses dest; PYTHONSAFEPATH keeps ``-m`` from putting the working
    # directory (the repository, holding today's torrentds/) ahead of it.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(dest), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["PYTHONSAFEPATH"] = "1"
    return f"`git archive {full[:12]}` ({rev}) of {ROOT}"


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or a dash when it was not measured."""
    return "—" if value is None or math.isnan(value) else format(value, spec)


def median(values: Iterable[float]) -> float | None:
    """The median of the measured values (NaN is not measured), None if there are none."""
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else None


def table(header: Sequence[str], align: str) -> list[str]:
    """A markdown table's first two lines; ``align`` has one letter per column, l or r."""
    rule = "|".join("---:" if a == "r" else "---" for a in align)
    return [row(header), f"|{rule}|"]


def row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def failed_row(error: str, columns: int, at: int = 2) -> str:
    """A row that says a case failed: its error's first line in column ``at``."""
    cells = [""] * columns
    cells[at] = f"FAILED: {error.replace('|', '/').splitlines()[0][:300]}"
    return row(cells)
