"""Which pieces each shard still misses, and which shards wait to be verified.

Pure bookkeeping, no engine: the job feeds it the pieces libtorrent reports
and reads back the shards whose every piece has passed (candidates for the
sha256 check). A shard keeps a count of its missing pieces, so a finished
piece costs O(1) and not O(shard).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torrentds.dataset import manifest
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import ManifestError
from torrentds.swarm import order
from torrentds.torrent.layout import FileEntry

MAX_SHARD_FAILURES = 3


@dataclass
class Shard:
    entry: ShardEntry
    file_path: Path
    pieces: range
    ready: bool = False
    failures: int = 0
    left: int = 0  # pieces not yet passed
    last_piece_at: float | None = None  # when its last piece passed (monotonic)


class ShardBook:
    """The shards of one torrent, the pieces on disk, the shards to verify."""

    def __init__(self) -> None:
        self.shards: list[Shard] = []
        self.by_piece: dict[int, list[Shard]] = {}
        self.by_path: dict[str, Shard] = {}
        self.have: set[int] = set()
        self.candidates: set[str] = set()  # paths whose pieces have all passed

    def track(
        self, entries: Iterable[ShardEntry], root: Path, files: Sequence[FileEntry], piece_size: int
    ) -> None:
        """Follow ``entries`` (files under ``root``; their pieces from ``files``)."""
        by_path = {f.path: f for f in files}
        for entry in entries:
            shard = Shard(entry, root / entry.path, by_path[entry.path].pieces(piece_size))
            self.shards.append(shard)
            self.by_path[entry.path] = shard
            for p in shard.pieces:
                self.by_piece.setdefault(p, []).append(shard)
        self._count_left()

    def passed(self, piece: int, now: float) -> None:
        """A piece passed its hash check: its shards may now be complete."""
        if piece not in self.have:
            self.have.add(piece)
            for shard in self.by_piece.get(piece, ()):
                shard.left -= 1
        for shard in self.by_piece.get(piece, ()):
            if not shard.ready and shard.left == 0:
                self.candidates.add(shard.entry.path)
                shard.last_piece_at = shard.last_piece_at or now

    def rescan(self, have: set[int] | None) -> None:
        """The pieces on disk as libtorrent now says (None: as they were), after a
        check, a recheck or a restart; every complete shard is a candidate again."""
        if have is not None:
            self.have = have
            self._count_left()
        self.candidates.update(s.entry.path for s in self.shards if not s.ready and not s.left)

    def _count_left(self) -> None:
        for shard in self.shards:
            shard.left = sum(p not in self.have for p in shard.pieces)

    def complete(self, shard: Shard) -> bool:
        return shard.left == 0

    def take_candidates(self, rank: dict[str, int]) -> list[Shard]:
        """The shards to verify now, in ``rank`` order (this peer's order); clears them."""
        by_path = self.by_path
        paths = sorted(self.candidates, key=lambda p: (rank.get(p, len(rank)), p))
        self.candidates.clear()
        return [by_path[p] for p in paths if not by_path[p].ready and by_path[p].left == 0]

    def wanted(self, ordering: order.Ordering, own_only: bool = False) -> list[Shard]:
        """Shards the job must make ready (all, or this node's with --only-mine).

        ``own_only``: this node's shards when it has a rank, else none.
        """
        o = ordering
        if o.rank is None or not o.world_size:
            return [] if own_only else self.shards
        if not (o.only_mine or own_only):
            return self.shards
        own = order.mine([s.entry for s in self.shards], o.rank, o.world_size)
        return [s for i, s in enumerate(self.shards) if i in own]

    def states(self) -> list[dict[str, object]]:
        """Each shard: pending, downloading, verifying, ready or failed."""
        return [
            {
                "path": s.entry.path,
                "split": s.entry.split,
                "state": self._state(s),
                "bytes": s.entry.bytes,
                "samples": s.entry.samples,
            }
            for s in self.shards
        ]

    def _state(self, shard: Shard) -> str:
        if shard.ready:
            return "ready"
        if shard.entry.path in self.candidates:
            return "verifying"
        if shard.failures:
            return "failed"
        return "downloading" if shard.left < len(shard.pieces) else "pending"


def foreign_shards(files: Sequence[FileEntry]) -> list[ShardEntry]:
    """A torrent with no manifest: each non-empty ``.tar`` is a shard, checked by
    its pieces only; its top folder is its split (``train/x.tar``), a ``.tar`` at
    the top is in split ``data``."""
    return [
        ShardEntry(f.path, f.path.split("/", 1)[0] if "/" in f.path else "data", f.size, "", 0)
        for f in files
        if f.path.endswith(".tar") and f.size > 0
    ]


def with_sha(entry: ShardEntry, sha: str) -> ShardEntry:
    """A foreign shard's entry once its sha256 has been read from disk."""
    return dataclasses.replace(entry, sha256=sha)


def load_checked(dataset_dir: Path, files: Sequence[FileEntry], piece_size: int) -> Manifest:
    """The downloaded manifest, refused if it disagrees with the torrent."""
    doc = manifest.load(dataset_dir)
    where = dataset_dir / manifest.MANIFEST_NAME
    by_path = {f.path: f for f in files}
    for s in doc.shards:
        found = by_path.get(s.path)
        if found is None or found.size != s.bytes or s.bytes == 0:
            raise ManifestError(where, f"{s.path}: not in the torrent with {s.bytes} bytes")
        span = found.pieces(piece_size)
        if (span.start, span.stop - 1) != (s.first_piece, s.last_piece):
            raise ManifestError(
                where,
                f"{s.path}: piece range {s.first_piece}-{s.last_piece} "
                f"disagrees with the torrent ({span.start}-{span.stop - 1})",
            )
    if doc.piece_size != piece_size:
        raise ManifestError(where, f"piece_size {doc.piece_size} != torrent's {piece_size}")
    return doc
