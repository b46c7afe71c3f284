"""When to put back a dropped web seed and when to restart a stuck torrent.

Pure policy: the job asks, these answer with what to do, and the job does it
on the engine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torrentds.torrent.engine import AddSpec

# No piece for this long, with a ban or an unchecked piece: restart the torrent.
STALL_RESTART_SECONDS = 20.0
MAX_WAIT_SECONDS = 600.0


@dataclass
class WebSeedRetry:
    """libtorrent bans a web seed, and drops it for good, when it alone is blamed
    for a failed piece; that includes a piece whose other blocks came from a
    lying peer it had banned already, so a good web seed goes too and a download
    with no other source stalls. A dropped seed is put back at once, then every
    ``base`` seconds while pieces keep arriving, with a doubling delay (up to 10
    min) while none do. Bytes from a web seed that really is wrong cost a
    request each time and are never accepted."""

    base: float
    known: set[str] = field(default_factory=set)  # every web seed ever listed
    # a dropped seed's last re-add: (time, delay, pieces held then)
    retried: dict[str, tuple[float, float, int]] = field(default_factory=dict)

    def due(self, now: float, listed: Iterable[str], have: int) -> list[str]:
        """The dropped web seeds to add again now."""
        listed = set(listed)
        self.known |= listed
        out = []
        for url in sorted(self.known - listed):
            last, delay, had = self.retried.get(url, (-math.inf, self.base, -1))
            moving = have > had
            if now - last < (self.base if moving else delay):
                continue
            out.append(url)
            self.retried[url] = (
                now,
                self.base if moving else min(delay * 2, MAX_WAIT_SECONDS),
                have,
            )
        return out


@dataclass
class StallWatch:
    """Two ways libtorrent stops for good although a good source is there: it
    bans a good peer whose blocks shared pieces with a liar's (each failed piece
    costs every contributor trust, and a ban lasts as long as the torrent); or it
    leaves a piece whose blocks are all on disk unchecked, so nobody asks for it
    again. Removing and re-adding the torrent forgets bans and partial pieces and
    keeps every verified one. Only after ``wait`` seconds without a piece or a
    new block, and only with one of those two signs; the wait doubles after each
    restart (up to 10 min)."""

    last_new_data: float
    wait: float = STALL_RESTART_SECONDS
    banned: bool = False  # a peer was banned since the last (re)start
    best_done: int = 0  # the most bytes yet on disk, blocks of partial pieces too

    def data(self, now: float, total_done: int | None = None) -> None:
        """A piece passed (or, with ``total_done``, the bytes on disk were read)."""
        if total_done is None or total_done > self.best_done:
            # Blocks still arriving: large pieces on a slow link are not a stall.
            self.best_done = max(self.best_done, total_done or 0)
            self.last_new_data = now

    def restart_reason(self, now: float, unchecked: list[int]) -> str | None:
        """Why to restart now, or None."""
        if now - self.last_new_data < self.wait or not (self.banned or unchecked):
            return None
        why = f"piece {unchecked[0]} never checked" if unchecked else "a peer was banned"
        return f"no new data in {now - self.last_new_data:.0f} s ({why})"

    def restarted(self, now: float) -> None:
        self.banned = False
        self.best_done = 0  # partial pieces were dropped: count from here
        self.last_new_data = now
        self.wait = min(self.wait * 2, MAX_WAIT_SECONDS)


class WebSeedCounter:
    """Bytes from web seeds across reconnects (a counter for metrics).

    Sampled, so approximate: what a web seed sent after the last sample
    before its connection closed is not counted.
    """

    def __init__(self) -> None:
        self.total = 0
        self.sampled_at = 0.0
        self._seen: dict[str, int] = {}

    def sample(self, now: float, totals: dict[str, int]) -> None:
        """Each open web seed connection's byte count now."""
        self.sampled_at = now
        for key, count in totals.items():
            before = self._seen.get(key, 0)
            self.total += count - before if count >= before else count
        self._seen = totals

    def forget_connections(self) -> None:
        """The torrent was re-added: its connections (and their counts) are new."""
        self._seen = {}


def restart_spec(
    spec: AddSpec, resume: bytes, web_seeds: Iterable[str], file_priorities: Sequence[int]
) -> AddSpec:
    """How to add a stuck torrent again: from its resume data, partial pieces
    dropped, the web seeds and file priorities it had."""
    return dataclasses.replace(
        spec,
        torrent=None,
        magnet=None,
        resume=resume,
        drop_partial=True,
        trackers=(),  # the resume data lists them
        web_seeds=tuple(sorted(web_seeds)),
        file_priorities=tuple(file_priorities) or None,
        hold_files=False,
    )
