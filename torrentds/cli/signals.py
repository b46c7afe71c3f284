"""SIGTERM/SIGINT as a stop request (the job saves resume data and returns),
and the exit code an interrupted run reports."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

from torrentds.swarm import events


class Stop(threading.Event):
    """Set by SIGTERM/SIGINT; ``signum`` says which came first."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """SIGTERM/SIGINT set the event: the job saves resume data and returns."""
    stop = Stop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        if stop.signum is None:
            stop.signum = signum
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_if_interrupted(stop: Stop, reached_seeding: bool, result: events.JobResult) -> None:
    """A signal before the job completed exits 128 + its number (130 SIGINT, 143
    SIGTERM), as a shell reports it, so a script can tell an interrupted run from a
    finished one. Once complete (seeding), stopping is how a run ends: exit 0."""
    if stop.signum is None or not result.stopped or reached_seeding:
        return
    name = signal.Signals(stop.signum).name
    click.echo(
        f"torrentds: interrupted ({name}) before completion; resume data saved, "
        "run the same command again to resume",
        err=True,
    )
    sys.exit(128 + stop.signum)
