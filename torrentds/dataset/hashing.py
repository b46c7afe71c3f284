"""One read pass over a torrent's files: sha256 per file and sha1 per piece.

Files are hashed in parallel threads (hashlib releases the GIL on large
buffers, so this uses every core). A piece that lies wholly inside one file
is hashed by that file's worker; the few pieces that straddle two files are
hashed afterwards from the bytes around the boundary.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from torrentds.errors import StorageError

READ_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileDigest:
    """A file's sha256 and the sha1s of the whole pieces inside it, in order.

    ``head`` is how many bytes precede the file's first piece boundary, which
    is what decides where its whole pieces lie.
    """

    sha256: str
    pieces: tuple[bytes, ...]
    head: int = 0


class PieceHasher:
    """Incremental sha1 per ``piece_size`` bytes plus sha256 of the stream.

    ``pack`` feeds it while writing a shard, so each byte is hashed once.
    """

    def __init__(self, piece_size: int) -> None:
        self.piece_size = piece_size
        self.sha256 = hashlib.sha256()
        self.pieces: list[bytes] = []
        self.length = 0
        self._piece = hashlib.sha1()
        self._in_piece = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self.sha256.update(view)
        self.length += len(view)
        while view:
            room = self.piece_size - self._in_piece
            part = view[:room]
            self._piece.update(part)
            self._in_piece += len(part)
            view = view[len(part) :]
            if self._in_piece == self.piece_size:
                self.pieces.append(self._piece.digest())
                self._piece = hashlib.sha1()
                self._in_piece = 0

    def finish(self) -> FileDigest:
        """Digest of everything fed; a trailing partial piece is not included."""
        return FileDigest(self.sha256.hexdigest(), tuple(self.pieces))


def sha256_file(
    path: Path, advance: Callable[[int], None] | None = None, durable: bool = False
) -> str:
    """Hex sha256 of one file, read in large chunks; ``durable`` fsyncs it first."""
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as fh:
            if durable:
                os.fsync(fh.fileno())  # libtorrent's flush writes but never fsyncs
            while chunk := fh.read(READ_CHUNK):
                h.update(chunk)
                if advance:
                    advance(len(chunk))
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    return h.hexdigest()


def layout_offsets(files: Sequence[tuple[Path, int]]) -> tuple[list[int], int]:
    """Offset of each file laid end to end, and the total size."""
    offsets: list[int] = []
    total = 0
    for _, size in files:
        offsets.append(total)
        total += size
    return offsets, total


def hash_files(
    files: Sequence[tuple[Path, int]],
    piece_size: int,
    advance: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> list[FileDigest]:
    """Digest of each file at its place in the layout (files in parallel)."""
    offsets, _ = layout_offsets(files)
    workers = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(
                lambda i: _hash_file(
                    files[i][0], files[i][1], (-offsets[i]) % piece_size, piece_size, advance
                ),
                range(len(files)),
            )
        )


def hash_layout(
    files: Sequence[tuple[Path, int]],
    piece_size: int,
    known: dict[int, FileDigest] | None = None,
    advance: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> tuple[list[str], bytes]:
    """Hash ``files`` laid end to end as one torrent's content.

    ``known`` maps file indexes whose digest is already computed (``pack``
    hashes while writing); they are used only when the file starts on a piece
    boundary and is a whole number of pieces long, otherwise it is re-read.
    Returns (sha256 per file, concatenated sha1 per piece).
    """
    known = known or {}
    offsets, total = layout_offsets(files)
    piece_count = (total + piece_size - 1) // piece_size

    def work(i: int) -> FileDigest:
        head = (-offsets[i]) % piece_size
        cached = known.get(i)
        if cached is not None and cached.head == head:
            return cached
        return _hash_file(files[i][0], files[i][1], head, piece_size, advance)

    workers = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(work, range(len(files))))

    pieces: list[bytes | None] = [None] * piece_count
    for i, digest in enumerate(results):
        first_whole = -(-offsets[i] // piece_size)
        for k, h in enumerate(digest.pieces):
            pieces[first_whole + k] = h
    for index in (i for i, h in enumerate(pieces) if h is None):
        pieces[index] = _hash_span(
            files, offsets, index * piece_size, min(piece_size, total - index * piece_size)
        )
    return [d.sha256 for d in results], b"".join(p for p in pieces if p is not None)


def _hash_file(
    path: Path, size: int, head: int, piece_size: int, advance: Callable[[int], None] | None
) -> FileDigest:
    """sha256 of the file, sha1 of each global piece wholly inside it."""
    sha256 = hashlib.sha256()
    pieces: list[bytes] = []
    whole = (size - head) // piece_size if size >= head else 0
    try:
        with open(path, "rb", buffering=0) as fh:
            read = 0
            if head and size:
                chunk = fh.read(min(head, size))
                sha256.update(chunk)
                read += len(chunk)
            for _ in range(whole):
                chunk = fh.read(piece_size)
                if len(chunk) != piece_size:
                    raise StorageError(path, "file shrank while it was being hashed")
                sha256.update(chunk)
                pieces.append(hashlib.sha1(chunk).digest())
                read += len(chunk)
                if advance:
                    advance(len(chunk))
            while chunk := fh.read(READ_CHUNK):
                sha256.update(chunk)
                read += len(chunk)
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    if read != size:
        raise StorageError(path, f"file is {read} bytes, expected {size}")
    if advance:
        advance(size - whole * piece_size)
    return FileDigest(sha256.hexdigest(), tuple(pieces), head)


def _hash_span(
    files: Sequence[tuple[Path, int]], offsets: list[int], start: int, length: int
) -> bytes:
    """sha1 of ``length`` bytes at global ``start``, read across file ends."""
    sha1 = hashlib.sha1()
    end = start + length
    for (path, size), offset in zip(files, offsets, strict=True):
        lo, hi = max(start, offset), min(end, offset + size)
        if lo >= hi:
            continue
        try:
            with open(path, "rb") as fh:
                fh.seek(lo - offset)
                sha1.update(fh.read(hi - lo))
        except OSError as exc:
            raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    return sha1.digest()
