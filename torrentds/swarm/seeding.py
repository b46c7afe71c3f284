"""The seed limits' clock: ``--seed-hours`` and ``--seed-ratio`` (torrentds,
not libtorrent, enforces them). It starts at completion, or when a seed's check
finds a damaged folder that may never be complete."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class SeedClock:
    hours: float
    ratio: float | None
    since: float | None = None  # monotonic time the clock started
    base_up: int = 0  # bytes uploaded before it started

    @property
    def running(self) -> bool:
        return self.since is not None

    def start(self, now: float, uploaded: int) -> None:
        self.since, self.base_up = now, uploaded

    def reached(self, now: float, uploaded: int, size: int) -> bool:
        """True once either limit is reached (never before the clock starts)."""
        if self.since is None:
            return False
        if now - self.since >= self.hours * 3600:
            return True
        return self.ratio is not None and uploaded - self.base_up >= self.ratio * max(size, 1)

    def seconds(self, now: float) -> float:
        """Seconds seeded so far (0 before the clock starts)."""
        return round(now - self.since, 1) if self.since is not None else 0.0

    def left(self, now: float) -> float | None:
        """Seconds of --seed-hours left (None: not started, or until stopped)."""
        if self.since is None or not math.isfinite(self.hours):
            return None
        return round(max(self.hours * 3600 - (now - self.since), 0.0), 1)

    def finite_hours(self) -> float | None:
        return self.hours if math.isfinite(self.hours) else None
