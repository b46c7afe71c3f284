"""Generated datasets: random samples as WebDataset tar shards, raw files or an ImageFolder
of PNGs, made into a torrent by ``torrentds create`` (no default trackers: only the URL a
benchmark names)."""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.procs import sh, torrentds_cmd
from torrentds.dataset.demo_data import png_bytes

MIB = 1 << 20
CLASSES = 10


def even_plan(total_bytes: int, sample_bytes: int, per_shard: int) -> list[list[int]]:
    """Sample sizes per shard: ``sample_bytes`` each (the last one smaller), ``per_shard``
    samples to a shard."""
    sizes = [sample_bytes] * (total_bytes // sample_bytes)
    if total_bytes % sample_bytes:
        sizes.append(total_bytes % sample_bytes)
    return [sizes[i : i + per_shard] for i in range(0, len(sizes), per_shard)]


def jittered_plan(total_bytes: int, shards: int, rng: random.Random) -> list[list[int]]:
    """Sample sizes per shard: ``shards`` shards of equal budget, samples of 0.75–1.25 MiB."""
    plan = []
    for i in range(shards):
        left = total_bytes // shards + (1 if i < total_bytes % shards else 0)
        sizes = []
        while left > 0:
            sizes.append(min(left, int(rng.uniform(0.75, 1.25) * MIB)))
            left -= sizes[-1]
        plan.append(sizes)
    return plan


def write_shards(split: Path, plan: Sequence[Sequence[int]], rng: random.Random) -> list[Path]:
    """``split/<split>-NNNNNN.tar``: per sample a random ``KEY.bin`` and a ``KEY.cls`` label."""
    split.mkdir(parents=True)
    paths: list[Path] = []
    key = 0
    for number, sizes in enumerate(plan):
        path = split / f"{split.name}-{number:06d}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for size in sizes:
                _add(tar, f"{key:06d}.bin", rng.randbytes(size))
                _add(tar, f"{key:06d}.cls", str(key % CLASSES).encode())
                key += 1
        paths.append(path)
    return paths


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_files(split: Path, total_bytes: int, file_bytes: int, rng: random.Random) -> None:
    """``split/NNNNNN.bin``: ``total_bytes`` of random files of ``file_bytes`` each."""
    split.mkdir(parents=True)
    for i, start in enumerate(range(0, total_bytes, file_bytes)):
        (split / f"{i:06d}.bin").write_bytes(rng.randbytes(min(file_bytes, total_bytes - start)))


def write_imagefolder(root: Path, total_bytes: int, file_kb: int, seed: int) -> list[Path]:
    """``root/train/<class>/<n>.png``: real PNGs of seeded noise, ~``file_kb`` KB each."""
    rng = random.Random(seed)
    side = max(8, int((file_kb * 1000 / 3) ** 0.5))  # RGB noise barely compresses
    paths: list[Path] = []
    written = 0
    while written < total_bytes:
        n = len(paths)
        folder = root / "train" / f"class{n % CLASSES:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{n:07d}.png")
        data = png_bytes(rng, side)
        paths[-1].write_bytes(data)
        written += len(data)
    return paths


@dataclass(frozen=True)
class Dataset:
    """A dataset as ``torrentds create --json`` described it."""

    folder: Path  # the origin's copy, named after the dataset
    torrent: Path
    infohash: str
    name: str
    size: int
    pieces: int
    piece_size: int
    shards: int

    def __str__(self) -> str:
        return (
            f"{self.size:,} bytes, {self.shards} shards, {self.pieces} pieces, "
            f"infohash {self.infohash}"
        )


def create(source: Path, torrent: Path, tracker_url: str, *extra: str) -> Dataset:
    """``torrentds create SOURCE`` naming only ``tracker_url``; ``extra`` are more options."""
    text = sh(
        torrentds_cmd(
            *("create", str(source), "--no-default-trackers", "--tracker", tracker_url),
            *(*extra, "-o", str(torrent), "--json"),
        ),
        timeout=1800,
    )
    made: dict[str, Any] = json.loads(text)
    return Dataset(
        folder=Path(made["dataset_dir"]),
        torrent=torrent,
        infohash=str(made["infohash"]),
        name=str(made["name"]),
        size=int(made["bytes"]),
        pieces=int(made["pieces"]),
        piece_size=int(made["piece_size"]),
        shards=sum(int(s["shards"]) for s in made["splits"].values()),
    )


def torrent_files(torrent: Path) -> list[tuple[str, int]]:
    """(path in the dataset, bytes) of every file ``torrent`` names."""
    info = json.loads(sh(torrentds_cmd("info", str(torrent), "--json")))
    return [(str(p), int(s)) for p, s in info["files"]]
