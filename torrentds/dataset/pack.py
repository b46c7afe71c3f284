"""Plan -> deterministic WebDataset tar shards, each padded to whole pieces.

A shard is written once: the bytes go through a ``PieceHasher`` on their way
to disk, so its sha256 and its piece hashes are known when the file closes.
After the tar end marker the shard is zero-padded to a multiple of the piece
size (tar readers stop at the end marker), so every shard owns whole pieces.
Tar metadata is fixed (mtime 0, uid/gid 0, no user names, mode 0644): the same
input gives the same bytes.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from torrentds.dataset.hashing import FileDigest, PieceHasher
from torrentds.dataset.scan import Plan, Sample
from torrentds.errors import InputError, StorageError

MIN_PIECE = 256 << 10
MAX_PIECE = 16 << 20
_BLOCK = 512


def choose_piece_size(total_bytes: int) -> int:
    """Smallest power of two in 256 KiB..16 MiB giving at most 10,000 pieces."""
    size = MIN_PIECE
    while size < MAX_PIECE and total_bytes > 10_000 * size:
        size *= 2
    return size


@dataclass(frozen=True)
class ShardPlan:
    rel: str
    split: str
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class PackedShard:
    rel: str
    split: str
    samples: int
    size: int
    digest: FileDigest


def _member_estimate(name: str, size: int) -> int:
    header = _BLOCK if len(name.encode()) <= 100 else 3 * _BLOCK  # pax header for long names
    return header + -(-size // _BLOCK) * _BLOCK


def _sample_estimate(sample: Sample) -> int:
    est = sum(_member_estimate(f"{sample.key}.{f.ext}", f.size) for f in sample.files)
    if sample.label is not None:
        est += _member_estimate(f"{sample.key}.cls", 8)
    return est


def plan_shards(plan: Plan, shard_size: int) -> list[ShardPlan]:
    """Cut each split into shards of at most ``shard_size`` bytes (estimated)."""
    out: list[ShardPlan] = []
    for split, samples in plan.splits.items():
        current: list[Sample] = []
        size = 0
        number = 0
        for sample in samples:
            est = _sample_estimate(sample)
            if current and size + est > shard_size:
                out.append(ShardPlan(f"{split}/{split}-{number:06d}.tar", split, tuple(current)))
                number += 1
                current, size = [], 0
            current.append(sample)
            size += est
        if current:
            out.append(ShardPlan(f"{split}/{split}-{number:06d}.tar", split, tuple(current)))
    return out


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, fh: io.BufferedWriter, hasher: PieceHasher) -> None:
        self._fh = fh
        self._hasher = hasher

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._hasher.update(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self._hasher.length


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_shard(
    shard: ShardPlan, out_dir: Path, piece_size: int, advance: Callable[[int], None] | None = None
) -> PackedShard:
    """Write one shard under ``out_dir``; returns its size and hashes."""
    path = out_dir / shard.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    hasher = PieceHasher(piece_size)
    try:
        with open(path, "wb") as raw:
            writer = _HashingWriter(raw, hasher)
            with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for sample in shard.samples:
                    for f in sample.files:
                        try:
                            with open(f.path, "rb") as src:
                                tar.addfile(_tarinfo(f"{sample.key}.{f.ext}", f.size), src)
                        except OSError as exc:
                            raise InputError(f.path, f"cannot read: {exc.strerror or exc}") from exc
                        if advance:
                            advance(f.size)
                    if sample.label is not None:
                        label = str(sample.label).encode()
                        tar.addfile(_tarinfo(f"{sample.key}.cls", len(label)), io.BytesIO(label))
            pad = (-hasher.length) % piece_size
            writer.write(bytes(pad))
            raw.flush()
            os.fsync(raw.fileno())
    except OSError as exc:
        raise StorageError(path, f"cannot write shard: {exc.strerror or exc}") from exc
    return PackedShard(shard.rel, shard.split, len(shard.samples), hasher.length, hasher.finish())


def pack(
    plan: Plan,
    out_dir: Path,
    shard_size: int,
    piece_size: int,
    advance: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> list[PackedShard]:
    """Write every shard of ``plan`` into ``out_dir`` (shards in parallel)."""
    shards = plan_shards(plan, shard_size)
    workers = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: write_shard(s, out_dir, piece_size, advance), shards))
