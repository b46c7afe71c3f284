"""A job's phase and the moves between them (anything else is a bug)."""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    METADATA = "metadata"  # waiting for the torrent's info dictionary (a magnet)
    MANIFEST = "manifest"  # only torrentds.json is fetched, until it is read
    DOWNLOADING = "downloading"  # shards arrive and are verified (a seed: checked)
    COMPLETING = "completing"  # every wanted shard verified: flushing, saving resume data
    SEEDING = "seeding"  # complete on disk; the seed limits decide the end


NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.METADATA: frozenset({Phase.MANIFEST, Phase.DOWNLOADING}),
    Phase.MANIFEST: frozenset({Phase.DOWNLOADING}),
    Phase.DOWNLOADING: frozenset({Phase.COMPLETING}),
    Phase.COMPLETING: frozenset({Phase.SEEDING}),
    Phase.SEEDING: frozenset(),
}


class PhaseError(RuntimeError):
    """A move the state machine does not allow: a bug, never bad input."""


def move(current: Phase, to: Phase) -> Phase:
    """``to``, if the move from ``current`` is legal."""
    if to not in NEXT[current]:
        raise PhaseError(f"a job cannot go from {current.value} to {to.value}")
    return to
