"""One engine, many jobs: the loop that feeds events to jobs and ticks them.

``get`` and ``seed`` run one job and return when it is done. The sidecar runs
several until stopped; other threads (the HTTP API, SIGHUP) add and remove
jobs through ``submit``, which hands a function to the loop's thread, because
libtorrent handles and job state are only touched there. What they read
(status rows, shard states) comes from ``view``, a snapshot the loop publishes
(when ``publishing``: a sidecar) every ``PUBLISH_SECONDS``, after every submitted
call and before every milestone event: a read never waits for the loop.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from torrentds.errors import StorageError, TorrentdsError
from torrentds.swarm import report
from torrentds.swarm.events import (
    Done,
    Emit,
    Failed,
    JobEvent,
    JobResult,
    Progress,
    ShardReady,
    Warned,
)
from torrentds.swarm.job import Job
from torrentds.torrent import alerts
from torrentds.torrent import engine as eng

T = TypeVar("T")
TICK_SECONDS = 0.25
PUBLISH_SECONDS = 0.2


@dataclass
class Finished:
    """A job that ended: its result, or the error that ended it."""

    result: JobResult | None = None
    error: TorrentdsError | None = None

    def outcome(self) -> JobResult:
        """The result, or the job's own error raised again."""
        if self.result is not None:
            return self.result
        raise self.error or TorrentdsError("job", "ended without a result")


@dataclass(frozen=True)
class View:
    """The jobs at one moment, for readers on other threads (never mutated)."""

    rows: tuple[dict[str, Any], ...] = ()  # one status row per torrent, running or ended
    shards: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)  # running
    dataset_dirs: tuple[Path, ...] = ()  # the data folders of running torrents
    published_at: float = 0.0  # time.monotonic()


@dataclass
class _Call:
    fn: Callable[[], Any]
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class Runner:
    def __init__(self, engine: eng.Engine, publishing: bool = False) -> None:
        self.engine = engine
        # Only a sidecar has readers on other threads; get and seed skip the view's work.
        self.publishing = publishing
        self.jobs: dict[str, Job] = {}
        self.finished: dict[str, Finished] = {}
        self._calls: queue.Queue[_Call] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.running = threading.Event()  # set while ``run`` loops
        self.view = View()  # replaced whole, never changed in place

    def _publishing(self, emit: Emit) -> Emit:
        """``emit`` that first publishes the view on a milestone (not on the
        frequent progress and shard events), so whoever hears of it and then
        reads ``/status`` sees it."""

        def publish_then_emit(event: JobEvent) -> None:
            if not isinstance(event, Progress | ShardReady | Warned):
                self._publish_quietly()
            emit(event)

        return publish_then_emit

    def publish(self) -> None:
        """Replace ``view`` with the jobs as they are now (on the loop's thread).
        A job whose state cannot be read shows as an error row; the others still
        publish (one bad dataset must not freeze every reader's view)."""
        rows: list[dict[str, Any]] = []
        shards: dict[str, tuple[dict[str, Any], ...]] = {}
        for ih, job in self.jobs.items():
            try:
                rows.append(job.snapshot())
                shards[ih] = tuple(job.shard_states())
            except Exception as exc:
                rows.append(report.ended_row(ih, None, str(as_error(exc, job.name or ih))))
        rows += [
            report.ended_row(ih, done.result, str(done.error) if done.error else None)
            for ih, done in self.finished.items()
        ]
        self.view = View(
            rows=tuple(rows),
            shards=shards,
            dataset_dirs=tuple(
                job.dataset_dir for job in self.jobs.values() if job.dataset_dir is not None
            ),
            published_at=time.monotonic(),
        )

    # -- jobs -------------------------------------------------------------------
    def add(self, job: Job) -> None:
        """Start ``job`` (call on the loop's thread, or before ``run``)."""
        job.emit = self._publishing(job.emit)
        self.jobs[job.ref.infohash] = job
        self.finished.pop(job.ref.infohash, None)
        self._guard(job, job.start)

    def remove(self, infohash: str, stopped: bool = True) -> Finished:
        """Stop one job, keeping its data; returns how it ended."""
        job = self.jobs[infohash]
        done = self._end(job, stopped)
        self.engine.remove(job.ref)
        return done

    def submit(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn`` on the loop's thread and return its value (or raise its error)."""
        if self._thread is None or threading.current_thread() is self._thread:
            try:
                return fn()
            finally:
                self._publish_quietly()
        call = _Call(fn)
        self._calls.put(call)
        if not call.done.wait(timeout):
            raise TorrentdsError("runner", f"the session did not answer within {timeout:g} s")
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[no-any-return]

    # -- the loop ---------------------------------------------------------------
    def pump(self, timeout: float, ending: Job | None = None) -> None:
        """Deliver engine events to their jobs (and to ``ending``, a job that is
        saving its resume data on its way out)."""
        for event in self.engine.events(timeout):
            if isinstance(event, alerts.SessionFailed):
                raise TorrentdsError("session", event.message)
            job = self.jobs.get(event.infohash)
            if job is not None:
                self._guard(job, lambda j=job, e=event: j.handle(e))  # type: ignore[misc]
            elif ending is not None and ending.ref.infohash == event.infohash:
                with contextlib.suppress(Exception):  # it has failed already
                    ending.handle(event)

    def settle(self, job: Job, timeout: float = 8.0) -> None:
        """Save ``job``'s resume data and wait (bounded) until it is written: the
        one blocking wait, before a job ends, so a rerun resumes."""
        job.request_resume()
        deadline = time.monotonic() + timeout
        while job.resume.in_flight and time.monotonic() < deadline:
            self.pump(0.2, ending=job)

    def run(self, stop: threading.Event, until_empty: bool) -> None:
        """Loop until ``stop`` is set (or, with ``until_empty``, no job is left)."""
        self._thread = threading.current_thread()
        self._publish_quietly()
        self.running.set()
        try:
            while not stop.is_set():
                self.step(TICK_SECONDS)
                if until_empty and not self.jobs:
                    return
            for infohash in list(self.jobs):
                self.remove(infohash, stopped=True)
        finally:
            self.running.clear()
            self._run_calls()
            self._publish_quietly()
            self._thread = None

    def step(self, timeout: float) -> None:
        """One pass of the loop: events (waiting up to ``timeout``), calls from
        other threads, then every job's tick; a job whose tick says done ends."""
        self.pump(timeout)
        self._run_calls()
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if self._guard(job, lambda j=job, t=now: j.tick(t)):  # type: ignore[misc]
                self._end(job, stopped=False)
                self.engine.remove(job.ref)
        if now - self.view.published_at >= PUBLISH_SECONDS:
            self._publish_quietly()

    def _run_calls(self) -> None:
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                call.value = call.fn()
            except BaseException as exc:  # handed back to the caller's thread
                call.error = exc
            self._publish_quietly()  # the caller's next read sees what it did
            call.done.set()

    def _publish_quietly(self) -> None:
        if not self.publishing:
            return
        # ``publish`` reports a job it cannot read in its row; a failure beyond
        # that (a bug) must not end the loop that serves every dataset.
        with contextlib.suppress(Exception):
            self.publish()

    def _guard(self, job: Job, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` for ``job``; a failing job ends alone, keeping its error.

        Any exception counts, not only ours: a bug or an input nobody foresaw
        in one dataset must not end the process serving the others."""
        try:
            return fn()
        except Exception as exc:
            error = as_error(exc, job.name or job.ref.infohash)
            infohash = job.ref.infohash
            if self.jobs.pop(infohash, None) is not None:
                with contextlib.suppress(Exception):
                    self.settle(job)
                job.report_error(str(error))
                job.release()
                self.finished[infohash] = Finished(error=error)
                job.emit(Failed(error))
                with contextlib.suppress(Exception):
                    self.engine.remove(job.ref)
            return False

    def _end(self, job: Job, stopped: bool) -> Finished:
        """End a running job: resume data saved (it is still dispatched to
        meanwhile), its result kept, then ``Done`` told."""
        try:
            if job.needs_resume_save(stopped):
                self.settle(job)
            result = job.result(stopped)
        finally:
            job.release()
        done = self.finished[job.ref.infohash] = Finished(result=result)
        self.jobs.pop(job.ref.infohash, None)
        job.emit(Done(result))
        return done


def run_job(runner: Runner, job: Job, loop: Callable[[], None]) -> JobResult:
    """The one way a job is driven to its end (``get``, ``seed``, ``get --api``).

    ``loop`` runs ``runner``'s loop until the job has ended (or a stop); the
    job's result is returned, or its own error raised. A failure of the loop
    itself, ours or not, becomes one of our errors, and the training process
    waiting on the dataset is told (``error.json``)."""
    try:
        with errors_as_ours(job.name or job.ref.infohash):
            runner.add(job)
            loop()
            done = runner.finished.get(job.ref.infohash)
            if done is None:
                raise TorrentdsError(job.name or job.ref.infohash, "ended without a result")
            return done.outcome()
    except TorrentdsError as exc:
        job.report_error(str(exc))
        raise
    finally:
        job.release()


@contextlib.contextmanager
def errors_as_ours(subject: str) -> Iterator[None]:
    """Any exception in the block leaves it as one of our errors (one line)."""
    try:
        yield
    except Exception as exc:
        error = as_error(exc, subject)
        if error is exc:
            raise
        raise error from exc


def as_error(exc: BaseException, subject: str) -> TorrentdsError:
    """``exc`` as one of our errors (one line naming what it is about)."""
    if isinstance(exc, TorrentdsError):
        return exc
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else subject
        return StorageError(str(where), exc.strerror or str(exc) or type(exc).__name__)
    if isinstance(exc, RecursionError):
        return TorrentdsError(subject, "input nested too deeply to read")
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return TorrentdsError(subject, f"unexpected failure: {text or type(exc).__name__}")
