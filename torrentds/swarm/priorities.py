"""File and piece priorities of a job, from the shard policy in ``order``.

The policy is pure (``file_priorities``, ``slice_piece_priorities``, and
``order.priorities`` below them); ``PriorityPlan`` remembers what was last set
and hands it to the torrent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from torrentds.swarm import order
from torrentds.swarm.shards import ShardBook
from torrentds.torrent.layout import FileEntry
from torrentds.torrent.ref import TorrentRef

# A ranked node holds other shards back while its own keep arriving; if they
# stall this long, the rest flows again so the swarm moves.
STALL_SECONDS = 10.0


def file_priorities(
    files: Sequence[FileEntry],
    shard_paths: Sequence[str],
    shard_prio: Sequence[int],
    manifest_index: int | None,
) -> list[int]:
    """A priority per file: its shard's, the manifest on top, anything else normal."""
    by_path = dict(zip(shard_paths, shard_prio, strict=True))
    prio = [by_path.get(f.path, order.NORMAL) for f in files]
    if manifest_index is not None:
        prio[manifest_index] = order.TOP
    return prio


def slice_piece_priorities(
    files: Sequence[FileEntry],
    prio: Sequence[int],
    piece_size: int,
    owners: Sequence[int],
    index: int,
    fallback: bool = False,
    head: range = range(0),
    own_done: bool = False,
) -> list[int]:
    """The piece priorities ``prio`` (per file) implies for peer ``index`` of the
    ``owners`` deal (``fallback``: the whole window its own; ``head``: the pieces of
    the window's first shard)."""
    base = [order.SKIP] * len(owners)
    for f, file_prio in zip(files, prio, strict=True):
        for p in f.pieces(piece_size):
            base[p] = max(base[p], file_prio)
    return order.slice_priorities(base, owners, index, fallback, head, own_done)


class PriorityPlan:
    def __init__(self, ordering: order.Ordering, seeding_only: bool = False) -> None:
        self.ordering = ordering
        self.seeding_only = seeding_only
        self.file_priorities: list[int] = []
        self.slice = ordering.slice  # this peer's part: given, or dealt by the swarm
        self._redealt = False  # the slice changed since priorities were last set
        self.slice_priorities: list[int] = []  # per piece, with a slice
        self.slice_checked_at = 0.0
        self._flat_sent: list[int] = []  # with --slice: the file priorities libtorrent has
        self.window: list[int] = []  # the shards at the top, since ``window_since``
        self.head = range(0)  # the pieces of the window's first shard
        self.own_done = False  # with a slice: every piece of its own part is in
        self.window_since = time.monotonic()
        self.fallback = False  # with --slice: the others' part of this window is ours too
        self._own: set[int] = set()  # id() of this node's shards
        self._shard_pieces: list[range] = []
        self._owners: tuple[int, list[int]] = (0, [])  # (peer count, each piece's peer)
        self.last_own_progress = time.monotonic()

    def redeal(self, slice_: order.Slice | None) -> bool:
        """The swarm dealt this peer a new part (None: it is alone); True if it changed."""
        if slice_ == self.slice:
            return False
        self.slice, self._redealt, self.own_done = slice_, True, False
        # A new deal gives the window a fresh start: the old one's wait is not this one's.
        self.window_since, self.fallback = time.monotonic(), False
        return True

    def follow(self, book: ShardBook) -> None:
        """The shards are known: remember which are this node's own."""
        self._own = {id(s) for s in book.wanted(self.ordering, own_only=True)}
        self._shard_pieces = [s.pieces for s in book.shards]
        self._owners = (0, [])

    def owners(self, ref: TorrentRef) -> list[int]:
        """Each piece's peer in the current slice's deal (kept per peer count)."""
        count = self.slice.count if self.slice is not None else 1
        if self._owners[0] != count:
            owners = order.slice_owners(
                self._shard_pieces, ref.num_pieces(), count, ref.piece_size()
            )
            self._owners = (count, owners)
        return self._owners[1]

    def piece_passed(self, book: ShardBook, piece: int, now: float) -> None:
        if any(id(s) in self._own for s in book.by_piece.get(piece, ())):
            self.last_own_progress = now

    def apply(
        self,
        ref: TorrentRef,
        book: ShardBook,
        download_order: Sequence[int],
        files: Sequence[FileEntry],
        manifest_index: int | None,
    ) -> list[int]:
        """Set the file priorities the shards' state implies; returns the window
        (indexes of the shards at the top)."""
        if self.seeding_only:
            return []
        mine = book.wanted(self.ordering, own_only=True)
        hold = (
            bool(mine)
            and not all(s.ready for s in mine)
            and time.monotonic() - self.last_own_progress < STALL_SECONDS
        )
        entries = [s.entry for s in book.shards]
        ready = [s.ready for s in book.shards]
        shard_prio = order.priorities(entries, download_order, ready, self.ordering, hold)
        prio = file_priorities(files, [e.path for e in entries], shard_prio, manifest_index)
        window = [i for i, p in enumerate(shard_prio) if p == order.TOP]
        first = next((i for i in download_order if shard_prio[i] == order.TOP), None)
        self.head = book.shards[first].pieces if first is not None else range(0)
        now = time.monotonic()
        falling_back = (
            self.slice is not None
            and window == self.window
            and not self.fallback
            and bool(window)
            and now - self.window_since >= STALL_SECONDS
        )
        if window != self.window:
            self.window, self.window_since, self.fallback = window, now, False
        elif falling_back:
            # A peer that left, stalls or never came must not hold the window:
            # after a bounded wait its part is fetched like our own.
            self.fallback = True
        own_done = self._own_part_done(ref, book)
        if own_done != self.own_done:
            self.own_done, self._redealt = own_done, True
        if falling_back or self._redealt or prio != self.file_priorities:
            self.set_file_priorities(ref, prio, files)
        return window

    def _own_part_done(self, ref: TorrentRef, book: ShardBook) -> bool:
        if self.slice is None:
            return False
        if self.own_done:
            return True  # until the next deal (redeal clears it)
        index, owners = self.slice.index, self.owners(ref)
        return all(p in book.have for p, o in enumerate(owners) if o == index)

    def set_file_priorities(
        self, ref: TorrentRef, prio: list[int], files: Sequence[FileEntry]
    ) -> None:
        """File priorities; with --slice, the piece priorities they imply."""
        self.file_priorities, self._redealt = prio, False
        slice_ = self.slice
        if slice_ is None:
            ref.prioritize_files(prio)
            self._flat_sent, self.slice_priorities = [], []
            return
        # With a slice the window lives in piece priorities alone: new file priorities
        # reset every piece's, and until the slice is put back all the window's pieces
        # (the other peers' parts too) would be asked of the origin at the top.
        flat = [min(p, order.NORMAL) for p in prio]
        if flat != self._flat_sent:
            self._flat_sent = flat
            ref.prioritize_files(flat)
        self.slice_priorities = slice_piece_priorities(
            files,
            prio,
            ref.piece_size(),
            self.owners(ref),
            slice_.index,
            self.fallback,
            self.head,
            self.own_done,
        )
        self.hold_slice(ref)

    def sent_file_priorities(self) -> list[int]:
        """The file priorities libtorrent was given (with a slice: flat), for a re-add."""
        return self._flat_sent if self.slice is not None else self.file_priorities

    def hold_slice(self, ref: TorrentRef) -> None:
        """libtorrent applies file priorities later, on its disk thread, and that
        resets piece priorities: put the slice back as soon as it is lost (the
        alert), and every second in case an alert was missed."""
        if self.slice_priorities and ref.piece_priorities() != self.slice_priorities:
            ref.prioritize_pieces(self.slice_priorities)
