"""How long-running library code reports progress without printing.

The library calls ``reporter.stage(label, total)`` and then the returned
``advance(n)``; the CLI plugs in a progress bar, tests plug in nothing.
``advance`` may be called from worker threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Advance = Callable[[int], None]


class Reporter(Protocol):
    def stage(self, label: str, total: int) -> Advance:
        """Start a stage of ``total`` units (bytes); returns its ``advance``."""
        ...


def _ignore(_: int) -> None:
    return None


class SilentReporter:
    """Reports nothing: the default for library callers and tests."""

    def stage(self, label: str, total: int) -> Advance:
        return _ignore
