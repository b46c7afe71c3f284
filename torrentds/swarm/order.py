"""Which shards a peer fetches first: a sliding window over its order.

With a rank, a node first fetches the shards it trains on (per split, index %
world_size == rank: the split WebDataset's ``split_by_node`` makes), then the
rest. Every other peer keeps the manifest's order. Only the next few shards of
the order get top priority: the rest stay below so data keeps flowing when the
window stalls.

With a slice (peer I of K fetching the same data: given, from the launcher, or
dealt by the swarm itself, ``membership``), every peer shares one window
(``SLICE_WINDOW`` shards). Each takes the I-th of K contiguous parts of every
shard itself (``slice_owners``): its own parts first, the others' from the
peers that fetched them, each in window order (``slice_priorities``). K peers
with distinct I ask the origin for disjoint pieces, so the origin sends each
piece about once, and the window's shards complete one after another on every
peer (BENCHMARKS.md, session 7).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from torrentds.dataset import nodes
from torrentds.dataset.manifest import ShardEntry

TOP = 7  # libtorrent's highest priority
MINE = 6  # a ranked node's own shards outside the window
NORMAL = 4  # libtorrent's default
LOW = 1  # another node's shards, while this node's are still coming
SKIP = 0  # not downloaded at all (--only-mine)

# With a slice, piece priorities: every own piece above every other peer's, so the
# origin is asked only for own pieces (libtorrent asks each peer for the best pieces
# it has, and the origin has them all); in each, the window's first shard, the rest
# of the window, then beyond the window.
OWN_LEVELS = (TOP, MINE, 5)
OTHERS_LEVELS = (4, 3, 2)
# Once its own part is in, a peer has only others' pieces left to ask the origin for: the
# ones beyond the window first, which their owners will fetch last (the window's are
# in flight to their owners now: asking for them too would have the origin send them twice).
OTHERS_LEVELS_OWN_DONE = (4, 3, 5)

# Parts are cut in runs of at least this much: a web seed is asked for 1 MiB of
# neighbouring pieces at a time (engine's urlseed_max_request_bytes), so a part of
# single pieces would make every such request mostly someone else's.
SLICE_UNIT_BYTES = 1 << 20
# With a slice, the window every peer shares: 2 shards got the first shard to every leecher
# sooner than 3 with the same total time (BENCHMARKS.md, session 6).
SLICE_WINDOW = 2


@dataclass(frozen=True)
class Slice:
    """Peer ``index`` of ``count`` peers fetching the same data."""

    index: int
    count: int


def slice_owners(
    shards: Sequence[range], num_pieces: int, count: int, piece_size: int
) -> list[int]:
    """Which of ``count`` peers asks the origin for each piece.

    Each shard is cut into ``count`` contiguous parts (whole runs of
    ``SLICE_UNIT_BYTES``), so every peer's part of the first shard is about as
    big and the shard is in after S/u_s; the parts turn by one peer per shard, so
    no peer always has the biggest. Pieces outside every shard go by run."""
    unit = max(1, SLICE_UNIT_BYTES // max(piece_size, 1))
    owners = [(p // unit) % count for p in range(num_pieces)]
    dealt: set[int] = set()  # a piece two adopted shards share goes with the first
    for s, pieces in enumerate(shards):
        runs = -(-len(pieces) // unit)
        for j, piece in enumerate(pieces):
            if piece not in dealt:
                owners[piece] = ((j // unit) * count // runs + s) % count
        dealt.update(pieces)
    return owners


@dataclass(frozen=True)
class Ordering:
    rank: int | None = None
    world_size: int | None = None
    only_mine: bool = False
    window: int = 3
    slice: Slice | None = None
    slice_source: str = ""  # what gave the slice: "--slice 2/6", "SLURM_NODEID/SLURM_NNODES"
    # No index given: the slice is dealt by the swarm as peers come and go (membership).
    from_swarm: bool = False

    def peer_index(self, dealt: Slice | None = None) -> str | None:
        """This peer's index, said in the started event and /status (None: none);
        ``dealt``: the swarm's current deal."""
        if self.from_swarm:
            where = f"{dealt.index}/{dealt.count} " if dealt is not None else ""
            return where + "from the swarm"
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
    # Every other peer keeps the manifest's order: they fetch the same window.
    return list(range(len(entries)))


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
    piece_priorities: Sequence[int],
    owners: Sequence[int],
    index: int,
    fallback: bool = False,
    head: Container[int] = (),
    own_done: bool = False,
) -> list[int]:
    """Piece priorities for peer ``index`` (``owners``: each piece's peer), from the
    priorities the shard window implies (TOP: in the window).

    Its own pieces first (``OWN_LEVELS``), the window's first shard (``head``)
    before the rest of the window, the window before the rest; the others' pieces
    after all its own (``OTHERS_LEVELS``): it gets them from the peers that fetched
    them. So each peer asks the origin only for its own part, and the window's
    shards complete one after another on every peer. ``fallback`` (the window
    stalled: a peer left or is slow): the others' part of the window is fetched
    as its own, from anyone. ``own_done``: its own part is all in
    (``OTHERS_LEVELS_OWN_DONE``)."""
    others = OTHERS_LEVELS_OWN_DONE if own_done else OTHERS_LEVELS
    out = []
    for piece, prio in enumerate(piece_priorities):
        if prio == SKIP:
            out.append(SKIP)
            continue
        window = prio == TOP
        own = owners[piece] == index or (fallback and window)
        levels = OWN_LEVELS if own else others
        out.append(levels[0 if window and piece in head else 1 if window else 2])
    return out
