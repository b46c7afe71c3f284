"""The versioned manifest ``torrentds.json`` and ``SHA256SUMS`` beside it.

The manifest is the dataset's own description, shipped inside the torrent:
splits, classes and, per shard, its bytes, sha256, sample count and the
range of torrent pieces it covers. Files appear only by write-to-temp then
rename, so a reader never sees half a manifest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torrentds.errors import ManifestError
from torrentds.statedir import write_atomic

MANIFEST_NAME = "torrentds.json"
SUMS_NAME = "SHA256SUMS"
SCHEMA_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ShardEntry:
    path: str
    split: str
    bytes: int
    sha256: str
    samples: int
    first_piece: int = 0
    last_piece: int = 0


@dataclass(frozen=True)
class SplitSummary:
    shards: int
    samples: int
    bytes: int


@dataclass
class Manifest:
    name: str
    layout: str
    piece_size: int
    classes: list[str] = field(default_factory=list)
    shards: list[ShardEntry] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    @property
    def splits(self) -> dict[str, SplitSummary]:
        out: dict[str, SplitSummary] = {}
        for split in sorted({s.split for s in self.shards}):
            mine = [s for s in self.shards if s.split == split]
            out[split] = SplitSummary(
                len(mine), sum(s.samples for s in mine), sum(s.bytes for s in mine)
            )
        return out

    def shards_of(self, split: str) -> list[ShardEntry]:
        return [s for s in self.shards if s.split == split]

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "schema": self.schema,
            "name": self.name,
            "layout": self.layout,
            "piece_size": self.piece_size,
            "classes": self.classes,
            "splits": {k: asdict(v) for k, v in self.splits.items()},
            "shards": [asdict(s) for s in self.shards],
        }
        return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def sha256sums(self) -> str:
        """``sha256sum -c`` format: two spaces, relative path."""
        return "".join(f"{s.sha256}  {s.path}\n" for s in self.shards)


def assign_pieces(shards: Iterable[ShardEntry], piece_size: int) -> list[ShardEntry]:
    """Give each shard its first and last piece, laid out in the given order."""
    out: list[ShardEntry] = []
    offset = 0
    for s in shards:
        last = (offset + max(s.bytes, 1) - 1) // piece_size
        out.append(
            ShardEntry(
                s.path,
                s.split,
                s.bytes,
                s.sha256,
                s.samples,
                first_piece=offset // piece_size,
                last_piece=last,
            )
        )
        offset += s.bytes
    return out


def parse(text: str, source: str | os.PathLike[str]) -> Manifest:
    """Parse manifest JSON; ``source`` names the file in errors."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(source, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise ManifestError(source, "not a manifest: JSON nested too deeply") from exc
    except ValueError as exc:  # e.g. a number of more digits than Python converts
        raise ManifestError(source, f"not a manifest: {str(exc)[:200]}") from exc
    if not isinstance(doc, dict):
        raise ManifestError(source, "expected a JSON object")
    schema = doc.get("schema")
    if schema != SCHEMA_VERSION:
        raise ManifestError(
            source, f"unsupported schema version {schema!r} (this torrentds reads {SCHEMA_VERSION})"
        )
    name = _field(doc, "name", str, source)
    layout = _field(doc, "layout", str, source)
    piece_size = _field(doc, "piece_size", int, source)
    if piece_size <= 0:
        raise ManifestError(source, f"piece_size must be positive, got {piece_size}")
    classes = _field(doc, "classes", list, source)
    if not all(isinstance(c, str) for c in classes):
        raise ManifestError(source, "classes must be a list of strings")
    raw_shards = _field(doc, "shards", list, source)
    shards = [_shard(raw, i, source) for i, raw in enumerate(raw_shards)]
    paths = [s.path for s in shards]
    if len(set(paths)) != len(paths):
        raise ManifestError(source, "a shard path is listed twice")
    return Manifest(name=name, layout=layout, piece_size=piece_size, classes=classes, shards=shards)


def _field(doc: dict[str, Any], key: str, kind: type, source: str | os.PathLike[str]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(source, f"field {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _shard(raw: Any, index: int, source: str | os.PathLike[str]) -> ShardEntry:
    where = f"shards[{index}]"
    if not isinstance(raw, dict):
        raise ManifestError(source, f"{where} must be an object")
    try:
        entry = ShardEntry(
            path=_field(raw, "path", str, source),
            split=_field(raw, "split", str, source),
            bytes=_field(raw, "bytes", int, source),
            sha256=_field(raw, "sha256", str, source),
            samples=_field(raw, "samples", int, source),
            first_piece=_field(raw, "first_piece", int, source),
            last_piece=_field(raw, "last_piece", int, source),
        )
    except ManifestError as exc:
        raise ManifestError(source, f"{where}: {exc.reason}") from exc
    parts = entry.path.split("/")
    if entry.path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in entry.path:
        raise ManifestError(source, f"{where}: unsafe shard path {entry.path!r}")
    if not _SHA256.match(entry.sha256):
        raise ManifestError(source, f"{where}: sha256 must be 64 lowercase hex digits")
    if entry.bytes < 0 or entry.samples < 0 or not 0 <= entry.first_piece <= entry.last_piece:
        raise ManifestError(source, f"{where}: negative size/count or bad piece range")
    return entry


def load(folder: Path) -> Manifest:
    """Read ``folder/torrentds.json``."""
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(path, "no manifest here (is this a torrentds dataset folder?)") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(path, "not a manifest: not UTF-8 text") from exc
    except OSError as exc:
        raise ManifestError(path, f"cannot read: {exc.strerror or exc}") from exc
    return parse(text, path)


def save(folder: Path, manifest: Manifest) -> None:
    """Write ``torrentds.json`` and ``SHA256SUMS`` into ``folder``."""
    write_atomic(folder / SUMS_NAME, manifest.sha256sums().encode("utf-8"))
    write_atomic(folder / MANIFEST_NAME, manifest.to_json().encode("utf-8"))
