"""Piece deadlines for the window, handed to libtorrent a few at a time.

libtorrent requests time-critical pieces first, in deadline order, so the head
of this peer's order really comes first. A deadline per piece of a 150 GB
shard at once would block the loop for minutes; ``MAX_DEADLINES`` are out at
any time and the next go out as those pass. Pure: the job sets what
``top_up`` returns.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

MAX_DEADLINES = 64


class DeadlineFeeder:
    def __init__(self) -> None:
        self.queued_shards: set[int] = set()  # shards whose pieces were queued
        self._queue: list[int] = []
        self._pos = 0
        self.out: set[int] = set()  # set and not yet passed
        self._step = 0

    def queue(self, shards: Iterable[tuple[int, Sequence[int]]]) -> bool:
        """Queue the pieces of newly windowed shards (index, pieces), in the given
        order; True if any was new."""
        fresh = [(i, pieces) for i, pieces in shards if i not in self.queued_shards]
        if not fresh:
            return False
        self.queued_shards.update(i for i, _ in fresh)
        self._queue = self._queue[self._pos :] + [p for _, pieces in fresh for p in pieces]
        self._pos = 0
        return True

    def passed(self, piece: int) -> bool:
        """A piece passed; True if it had a deadline (so one more may go out)."""
        if piece in self.out:
            self.out.discard(piece)
            return True
        return False

    def top_up(self, have: Container[int]) -> tuple[list[int], int]:
        """The next pieces to set deadlines on and the step the first one gets."""
        batch: list[int] = []
        while len(self.out) + len(batch) < MAX_DEADLINES and self._pos < len(self._queue):
            piece = self._queue[self._pos]
            self._pos += 1
            if piece not in have and piece not in self.out:
                batch.append(piece)
        start = self._step
        self.out.update(batch)
        self._step += len(batch)
        return batch, start
