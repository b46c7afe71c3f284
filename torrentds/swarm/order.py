"""Which shards a peer fetches first: a sliding window over its own order.

With a rank, a node first fetches the shards it trains on (per split, index %
world_size == rank: the split WebDataset's ``split_by_node`` makes), then the
rest. Without one, each peer shuffles with its own seed, so peers hold
different pieces early and trade them instead of all asking the origin for
shard 0. Only the next few shards of the order get top priority: the rest stay
at normal priority so data keeps flowing when the window stalls, and inside
the window libtorrent's rarest-first still picks pieces.

With a slice (peer I of K fetching the same data), every peer keeps the
manifest's order, so they share one window (``SLICE_WINDOW`` shards). Each takes
the I-th of every K runs of pieces (4 MiB each) itself: its own runs in the
window first, its own runs beyond it next, and the others' runs in the window
from the peers that fetched them (``slice_priorities``). K peers with distinct I
ask the origin for disjoint pieces, so the origin sends each piece about once,
and the window's shards complete early on every peer (BENCHMARKS.md, session 6).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from torrentds.dataset import nodes
from torrentds.dataset.manifest import ShardEntry

TOP = 7  # libtorrent's highest priority
MINE = 6  # a ranked node's own shards outside the window; with a slice, its pieces there
SHARED = 5  # with a slice: the other peers' pieces of the window (they forward them)
NORMAL = 4  # libtorrent's default
LOW = 1  # another node's shards, while this node's are still coming
SKIP = 0  # not downloaded at all (--only-mine)


SLICE_UNIT_BYTES = 4 << 20
# With a slice, the window every peer shares: 2 shards got the first shard to every leecher
# sooner than 3 with the same total time (BENCHMARKS.md, session 6).
SLICE_WINDOW = 2


@dataclass(frozen=True)
class Slice:
    """Peer ``index`` of ``count`` peers fetching the same data.

    Pieces are dealt out in runs of ``unit`` (``SLICE_UNIT_BYTES`` of data): a web
    seed is always asked for at least 1 MiB of neighbouring pieces at a time, so a
    slice of single pieces would make every such request mostly someone else's.
    """

    index: int
    count: int
    unit: int = 1

    def holds(self, piece: int) -> bool:
        return (piece // self.unit) % self.count == self.index

    def for_piece_size(self, piece_size: int) -> Slice:
        return replace(self, unit=max(1, SLICE_UNIT_BYTES // max(piece_size, 1)))


@dataclass(frozen=True)
class Ordering:
    rank: int | None = None
    world_size: int | None = None
    only_mine: bool = False
    window: int = 3
    seed: int = 0
    slice: Slice | None = None
    slice_source: str = ""  # what gave the slice: "--slice 2/6", "SLURM_NODEID/SLURM_NNODES"

    def peer_index(self) -> str | None:
        """This peer's index, said in the started event and /status (None: none)."""
        if self.slice is None:
            return None
        return f"{self.slice.index}/{self.slice.count} from {self.slice_source or '--slice'}"


def mine(entries: Sequence[ShardEntry], rank: int, world_size: int) -> set[int]:
    """Indexes (into ``entries``) of the shards node ``rank`` trains on."""
    by_split: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        by_split.setdefault(entry.split, []).append(i)
    return {i for indexes in by_split.values() for i in nodes.share(indexes, rank, world_size)}


def download_order(entries: Sequence[ShardEntry], ordering: Ordering) -> list[int]:
    """Indexes of ``entries`` in the order this peer wants them."""
    if ordering.rank is not None and ordering.world_size:
        own = mine(entries, ordering.rank, ordering.world_size)
        first = [i for i in range(len(entries)) if i in own]
        rest = [i for i in range(len(entries)) if i not in own]
        return first + rest
    order = list(range(len(entries)))
    if ordering.slice is None:
        random.Random(ordering.seed).shuffle(order)
    # With a slice every peer keeps the manifest's order: they fetch the same window.
    return order


def priorities(
    entries: Sequence[ShardEntry],
    order: Sequence[int],
    ready: Sequence[bool],
    ordering: Ordering,
    hold_others: bool = False,
) -> list[int]:
    """A priority per entry: the window on top, then mine, then the rest.

    ``hold_others`` (a ranked node whose own shards are still arriving) keeps
    other nodes' shards at 0, so none of them overtakes this node's own.
    """
    own = (
        mine(entries, ordering.rank, ordering.world_size)
        if ordering.rank is not None and ordering.world_size
        else None
    )
    prio = [NORMAL] * len(entries)
    if own is not None:
        for i in range(len(entries)):
            prio[i] = MINE if i in own else (SKIP if ordering.only_mine or hold_others else LOW)
    wanted = [i for i in order if not ready[i] and prio[i] != SKIP]
    for i in wanted[: ordering.window]:
        prio[i] = TOP
    return prio


def slice_priorities(
    piece_priorities: Sequence[int], slice_: Slice, fallback: bool = False
) -> list[int]:
    """Piece priorities for peer I of K: in the window (pieces at TOP) its own part
    first, the others' next (it gets them from the peers that fetched them); beyond
    the window its own part before anything else. So each peer asks the origin for
    its own pieces, and the window's shards complete in order on every peer.
    ``fallback`` (the window stalled: a peer left or is slow): the others' part of
    the window is on top too, fetched from anyone."""
    out = []
    for piece, prio in enumerate(piece_priorities):
        if prio == SKIP:
            out.append(SKIP)
        elif slice_.holds(piece):
            out.append(TOP if prio == TOP else MINE)
        else:
            out.append((TOP if fallback else SHARED) if prio == TOP else min(prio, NORMAL))
    return out
