"""Processes of a benchmark: short commands, bounded waits and long-running helpers.

Every long-running process starts in a session (process group) of its own, optionally inside
a network namespace, so that it can be stopped with all its children; ``SESSIONS`` remembers
every one for the final leftover check (``session.leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

Event = dict[str, Any]

# Every session (= process group leader) a benchmark started.
SESSIONS: set[int] = set()


class WaitTimeout(RuntimeError):
    """A bounded wait ran out."""


def sh(cmd: Sequence[str], timeout: float = 30, check: bool = True) -> str:
    """Run a short command (bounded); its stdout. Raises with stderr when ``check`` fails."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str | None, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run inside network namespace ``ns`` (as it is when ``ns`` is None)."""
    return ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")


def torrentds_cmd(*args: str) -> list[str]:
    """The torrentds CLI of this interpreter (``--rev`` puts another package first on
    PYTHONPATH)."""
    return [sys.executable, "-m", "torrentds", *args]


def torrentds_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def reap_any() -> None:
    """Reap exited children that nobody waits for (bounded, never blocks)."""
    for _ in range(100):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Proc:
    """One long-running process in a session of its own; with ``events``, its stdout is
    read as JSON lines (``torrentds --json``) on a thread."""

    def __init__(
        self,
        label: str,
        ns: str | None,
        cmd: Sequence[str],
        logdir: Path,
        env: dict[str, str] | None = None,
        events: bool = False,
    ) -> None:
        self.label = label
        self.stderr_path = logdir / f"{label}.err"
        self.stdout_path = logdir / f"{label}.out"
        self.events: list[Event] = []
        self.rusage_s = 0.0  # CPU seconds of the process (and its reaped children) once reaped
        self.ended: float | None = None
        self._lock = threading.Lock()
        err = self.stderr_path.open("wb")
        out: IO[bytes] | int = subprocess.PIPE if events else self.stdout_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                in_ns(ns, cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        finally:
            err.close()
            if not isinstance(out, int):
                out.close()
        SESSIONS.add(self.popen.pid)
        self.pid = self.popen.pid
        self._reader: threading.Thread | None = None
        if events:
            self._reader = threading.Thread(target=self._read_events, daemon=True)
            self._reader.start()

    def _read_events(self) -> None:
        assert self.popen.stdout is not None
        with self.stdout_path.open("wb") as raw:
            for line in self.popen.stdout:
                raw.write(line)
                with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        with self._lock:
                            self.events.append(event)

    def find(self, kind: str) -> Event | None:
        with self._lock:
            return next((e for e in self.events if e.get("event") == kind), None)

    def all(self, kind: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.get("event") == kind]

    def first_time(self, kind: str) -> float | None:
        event = self.find(kind)
        return float(event["time"]) if event is not None else None

    def wait_event(self, kind: str, timeout: float) -> Event:
        """The first ``kind`` event; raises if the process exits or ``timeout`` runs out
        before it comes."""
        deadline = time.monotonic() + timeout
        while (event := self.find(kind)) is None:
            if self.poll() is not None:
                if self._reader is not None:
                    self._reader.join(5)  # what it wrote before it exited
                if (event := self.find(kind)) is not None:
                    return event
                raise RuntimeError(
                    f"{self.label} exited with {self.popen.returncode} before "
                    f"its {kind!r} event: {self.tail()}"
                )
            if time.monotonic() > deadline:
                raise WaitTimeout(f"no {kind!r} event from {self.label} within {timeout:.0f} s")
            time.sleep(0.05)
        return event

    def poll(self) -> int | None:
        """Reap with wait4 (keeps the CPU time) if it exited; its exit code or None."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.popen.returncode = -1
            self.ended = time.time()
            return -1
        if pid == 0:
            return None
        self.ended = time.time()
        self.rusage_s = ru.ru_utime + ru.ru_stime
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        return self.popen.returncode

    def signal(self, sig: int) -> None:
        """``sig`` to the whole session's group: also children a parent left behind."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def tail(self, n: int = 600) -> str:
        text = ""
        for path in (self.stderr_path, self.stdout_path):
            with contextlib.suppress(OSError):
                text += path.read_bytes()[-n:].decode(errors="replace")
        return text.strip()


def stop_seeder(seeder: Proc) -> int | None:
    """Stop a torrentds seeder gracefully; the bytes it uploaded, from its final "done"
    event (None if it did not say)."""
    seeder.signal(signal.SIGTERM)
    try:
        return int(seeder.wait_event("done", 15)["uploaded"])
    except RuntimeError:
        return None


class Procs:
    """The processes of one run; ``stop_all`` ends them all (SIGTERM, then SIGKILL, bounded)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.items: list[Proc] = []

    def start(
        self,
        label: str,
        cmd: Sequence[str],
        ns: str | None = None,
        env: dict[str, str] | None = None,
        events: bool = False,
    ) -> Proc:
        proc = Proc(label, ns, cmd, self.logdir, env, events)
        self.items.append(proc)
        return proc

    def torrentds(self, label: str, args: Sequence[str], ns: str | None = None) -> Proc:
        """``torrentds ARGS`` with its JSON events read (pass ``--json`` in ``args``)."""
        return self.start(label, torrentds_cmd(*args), ns, torrentds_env(), events=True)

    def stop_all(self, timeout: float = 15.0) -> None:
        for proc in self.items:
            if proc.poll() is None:
                proc.signal(signal.SIGTERM)
        self._wait_all(timeout)
        for proc in self.items:
            proc.signal(signal.SIGKILL)
        self._wait_all(10)

    def _wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in self.items):
            time.sleep(0.05)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
