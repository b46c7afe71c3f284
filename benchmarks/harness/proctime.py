"""CPU time and memory of processes, read from ``/proc`` (proc(5))."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.procs import Proc

CLK_TCK = os.sysconf("SC_CLK_TCK")
MEMORY_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def proc_stat(path: str) -> list[str] | None:
    """The fields of a ``/proc/.../stat`` after the command name (state first), or None."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _live_stats() -> list[tuple[str, list[str]]]:
    """(pid, stat fields) of every process alive now."""
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = proc_stat(f"/proc/{entry.name}/stat")
            if fields is not None and len(fields) >= 15:
                out.append((entry.name, fields))
    return out


def session_ticks(sids: set[int]) -> dict[int, int]:
    """utime+stime+cutime+cstime of every live process, summed per session in ``sids``.

    A reaped child's time sits in its parent's cutime/cstime, so each process is counted once.
    """
    out: dict[int, int] = {}
    for _pid, fields in _live_stats():
        sid = int(fields[3])
        if sid in sids and fields[0] != "Z":
            out[sid] = out.get(sid, 0) + sum(int(f) for f in fields[11:15])
    return out


def session_members(sids: set[int]) -> list[str]:
    """Every process still alive (or a zombie) in one of the sessions ``sids``, described."""
    found = []
    for pid, fields in _live_stats():
        if int(fields[3]) in sids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                comm = "?"
            found.append(f"pid {pid} ({comm}, state {fields[0]}, session {fields[3]})")
    return found


def cpu_seconds(procs: Sequence[Proc]) -> dict[int, float]:
    """CPU seconds so far of each process's session (reaped leaders: their wait4 rusage)."""
    ticks = session_ticks({p.pid for p in procs})
    return {p.pid: p.rusage_s + ticks.get(p.pid, 0) / CLK_TCK for p in procs}


def _ticks(path: str) -> int:
    fields = proc_stat(path)
    if fields is None:
        raise OSError(f"{path}: unreadable")
    return int(fields[11]) + int(fields[12])  # utime + stime: fields 14 and 15 of proc(5)


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    ticks: int  # the whole process
    main_ticks: int  # its main thread (torrentds' Python loop; libtorrent has its own)
    memory_kb: dict[str, int]  # MEMORY_KEYS from /proc/PID/status


def sample(pid: int) -> Sample:
    memory: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in MEMORY_KEYS:
                memory[key] = int(value.split()[0])
    return Sample(
        time.monotonic(),
        _ticks(f"/proc/{pid}/stat"),
        _ticks(f"/proc/{pid}/task/{pid}/stat"),
        memory,
    )


class Sampler:
    """Samples a process's CPU ticks and memory every ``interval`` s on a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def take(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.samples.append(sample(self.pid))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.take()

    def __enter__(self) -> Sampler:
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.take()

    def peak_mb(self, key: str) -> float:
        """The largest value of ``key`` seen, in MB (10^6 bytes)."""
        return max((s.memory_kb.get(key, 0) for s in self.samples), default=0) * 1024 / 1e6
