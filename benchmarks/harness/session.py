"""One benchmark session: its temp folder, its signals, its runs and its cleanup.

``guarded`` runs a benchmark so that an error, Ctrl-C, SIGTERM or SIGHUP still stops every
process it started and deletes every namespace it made, then checks that nothing is left
(exit 3 naming what is, if anything is).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness import netns
from harness.procs import SESSIONS, reap_any
from harness.proctime import session_members

LEFTOVERS = 3  # the exit code when cleanup left something behind


def progress(tag: str) -> Callable[[str], None]:
    """A logger of progress lines to stderr (stdout is for the report)."""

    def log(msg: str) -> None:
        print(f"[{tag}] {msg}", file=sys.stderr, flush=True)

    return log


def require(parser: argparse.ArgumentParser, tools: Sequence[str]) -> None:
    """Exit through ``parser`` (status 2) naming the first tool not on PATH."""
    for tool in tools:
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found on PATH")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def guarded(
    name: str,
    run: Callable[[Path], int],
    log: Callable[[str], None],
    *,
    parent: Path | None,
    need_bytes: float,
    keep: bool,
    ns_prefix: str = "",
) -> int:
    """``run(work)`` in a fresh temp folder ``torrentds-NAME-*`` under ``parent`` (/tmp),
    which must have ``need_bytes`` free. Returns its exit code, 130 if interrupted, and
    ``LEFTOVERS`` if cleanup left anything behind (processes, namespaces ``ns_prefix*``)."""
    parent = parent or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    if free < need_bytes:
        raise SystemExit(f"{parent}: {free / 1e9:.1f} GB free, need ~{need_bytes / 1e9:.1f} GB")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    work = Path(tempfile.mkdtemp(prefix=f"torrentds-{name}-", dir=parent))
    work.chmod(0o755)  # opentracker drops to "nobody" and must reach its folder
    code = 1
    try:
        code = run(work)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); cleaning up")
        code = 130
    finally:
        # No signal may cut the cleanup short.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        left = leftovers(ns_prefix)
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if left:
        log("cleanup failed, left behind:\n  " + "\n  ".join(left))
        return LEFTOVERS
    where = f"no namespace {ns_prefix}*, " if ns_prefix else ""
    log(f"cleanup verified: {where}no process of ours left")
    return code


def leftovers(ns_prefix: str) -> list[str]:
    """Kill what is left (bounded), then name anything that still is."""
    if ns_prefix:
        netns.remove_namespaces(ns_prefix)
    for sid in SESSIONS:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and session_members(SESSIONS):
        reap_any()
        time.sleep(0.1)
    reap_any()
    left = [f"network namespace {ns}" for ns in netns.namespaces(ns_prefix)] if ns_prefix else []
    return left + session_members(SESSIONS)


@dataclass(frozen=True)
class Case:
    """One run to make: ``kind`` (a tool, a way) with ``n`` leechers."""

    n: int
    kind: str


class Runs:
    """The runs of a benchmark: each announced on the log, in a fresh numbered folder for
    its logs and leechers' copies, deleted after the run unless ``keep``."""

    def __init__(self, work: Path, keep: bool, repeat: int, log: Callable[[str], None]) -> None:
        self.work = work
        self.keep = keep
        self.repeat = repeat
        self.log = log
        self.count = 0

    def cases(
        self, rep: int, ns: Sequence[int], kinds: Sequence[str]
    ) -> Iterator[tuple[Case, Path]]:
        """The runs of repetition ``rep`` (from 0), each with its folder: every N, every
        kind; the kinds reversed every other repetition, so that none always runs first (on
        a cooler machine, or a warmer cache)."""
        for n in ns:
            for kind in kinds if rep % 2 == 0 else list(reversed(kinds)):
                with self.folder(rep, f"{kind}, N={n}", f"{kind}-{n}") as path:
                    yield Case(n, kind), path

    @contextlib.contextmanager
    def folder(self, rep: int, what: str, label: str) -> Iterator[Path]:
        """A run of repetition ``rep`` doing ``what``, in a folder named after ``label``."""
        self.log(f"repeat {rep + 1}/{self.repeat}: {what}")
        self.count += 1
        path = self.work / f"run{self.count:03d}-{label}"
        path.mkdir()
        try:
            yield path
        finally:
            if not self.keep:
                shutil.rmtree(path, ignore_errors=True)
