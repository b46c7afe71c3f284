"""Shared pieces of the fault tests: processes, the torrent's layout, integrity checks."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.netfixtures import Dataset
from tests.procs import ISOLATED, Torrentds
from torrentds.torrent import metainfo


def seed_folder(folder: Path, torrent: Path, *extra: str) -> Torrentds:
    """``torrentds seed`` of any folder, hash-checked first (the command's default)."""
    return Torrentds(["seed", str(folder), str(torrent), "--json", *ISOLATED, *extra])


def seed(ds: Dataset, *extra: str) -> Torrentds:
    """``torrentds seed`` of the dataset's origin folder (a swarm's first seeder),
    trusted as ``create`` made it."""
    return seed_folder(ds.origin, ds.torrent, "--skip-check", *extra)


def get(source: str, dest: Path, *extra: str) -> Torrentds:
    return Torrentds(["get", source, "-d", str(dest), "--json", *ISOLATED, *extra])


def damaged_copy(ds: Dataset, dest: Path) -> tuple[Path, str]:
    """A copy of the dataset's folder under ``dest`` with one piece of its last
    shard damaged (same size, wrong bytes); returns the copy and that shard."""
    copy = dest / ds.origin.name
    shutil.copytree(ds.origin, copy)
    last = str(json.loads((copy / "torrentds.json").read_text())["shards"][-1]["path"])
    with (copy / last).open("r+b") as fh:
        fh.seek(1024)  # any changed byte fails its piece's hash
        fh.write(b"damaged")
    return copy, last


def read_ready(folder: Path) -> list[dict[str, Any]]:
    log = folder / ".torrentds" / "ready.jsonl"
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line (kill -9 mid-append) is not a record
    return out


def assert_intact(folder: Path) -> None:
    """``sha256sum -c SHA256SUMS`` passes and the ready log lists each shard of the
    manifest exactly once, each line with the manifest's sha256 (none unverified)."""
    done = subprocess.run(
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shards = {s["path"]: s for s in json.loads((folder / "torrentds.json").read_text())["shards"]}
    ready = read_ready(folder)
    paths = [r["path"] for r in ready]
    assert len(paths) == len(set(paths)), f"a shard logged twice: {paths}"
    assert sorted(paths) == sorted(shards), f"ready log {sorted(paths)} != manifest"
    for r in ready:
        assert r["sha256"] == shards[r["path"]]["sha256"], r
        on_disk = hashlib.sha256((folder / r["path"]).read_bytes()).hexdigest()
        assert on_disk == r["sha256"], f"{r['path']}: logged but not what is on disk"


@dataclass(frozen=True)
class Layout:
    """Where each piece of a torrent lives in a dataset folder."""

    piece_size: int
    files: list[tuple[str, int, int]]  # (path relative to the dataset folder, offset, size)
    size: int
    infohash: bytes

    @classmethod
    def of(cls, torrent: Path) -> Layout:
        info = metainfo.read_torrent(torrent.read_bytes(), str(torrent))
        files, offset = [], 0
        for path, size in info.files:
            files.append((path, offset, size))
            offset += size
        return cls(info.piece_size, files, offset, bytes.fromhex(info.infohash))

    @property
    def pieces(self) -> int:
        return -(-self.size // self.piece_size)

    def read(self, folder: Path, start: int, length: int) -> bytes:
        """``length`` bytes of the torrent's concatenated files from ``start``;
        bytes of a missing or short file read as zeros."""
        out = bytearray()
        end = start + length
        for path, offset, size in self.files:
            lo, hi = max(start, offset), min(end, offset + size)
            if lo >= hi:
                continue
            try:
                with (folder / path).open("rb") as fh:
                    fh.seek(lo - offset)
                    chunk = fh.read(hi - lo)
            except FileNotFoundError:
                chunk = b""
            out += chunk + bytes(hi - lo - len(chunk))
        return bytes(out)

    def piece(self, folder: Path, index: int) -> bytes:
        start = index * self.piece_size
        return self.read(folder, start, min(self.piece_size, self.size - start))

    def pieces_of(self, path: str) -> range:
        for p, offset, size in self.files:
            if p == path:
                return range(offset // self.piece_size, (offset + size - 1) // self.piece_size + 1)
        raise KeyError(path)


class DiskProgress:
    """How much of a download is on disk, measured against a good copy.

    Counts the pieces that hold data (all-zero padding pieces match an empty
    sparse file, so they do not count) whose bytes already equal the good
    copy's. Finer than the ``progress`` events, which come every 2 s.
    """

    def __init__(self, layout: Layout, good: Path) -> None:
        self.layout = layout
        pieces = ((i, layout.piece(good, i)) for i in range(layout.pieces))
        self.good = {i: data for i, data in pieces if data.strip(b"\0")}

    def fraction(self, folder: Path) -> float:
        have = sum(self.layout.piece(folder, i) == data for i, data in self.good.items())
        return have / len(self.good)
