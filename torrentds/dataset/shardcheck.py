"""Read a tar shard's WebDataset structure: samples, keys, extensions, labels.

Members are grouped the way WebDataset groups them: the key is the member
name up to the first dot of its last path component, the rest is the
extension, and consecutive members with the same key form one sample.
Only headers and ``.cls`` members are read, so this is fast on big shards.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from torrentds.errors import ShardError


@dataclass
class ShardStructure:
    samples: int = 0
    extension_sets: dict[frozenset[str], int] = field(default_factory=dict)
    duplicate_keys: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    bad_labels: list[str] = field(default_factory=list)


def split_name(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext


def read_structure(path: Path, read_labels: bool = True) -> ShardStructure:
    """Walk ``path``'s tar headers; raises ``ShardError`` if it is not a tar."""
    out = ShardStructure()
    seen: set[str] = set()
    key: str | None = None
    exts: set[str] = set()

    def close_sample() -> None:
        if key is not None:
            s = frozenset(exts)
            out.extension_sets[s] = out.extension_sets.get(s, 0) + 1

    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                k, ext = split_name(member.name)
                if k != key:
                    close_sample()
                    if k in seen:
                        out.duplicate_keys.append(k)
                    seen.add(k)
                    key, exts = k, set()
                    out.samples += 1
                elif ext in exts:
                    out.duplicate_keys.append(f"{k}.{ext}")
                exts.add(ext)
                if read_labels and ext == "cls":
                    fh = tar.extractfile(member)
                    text = fh.read(64).decode("ascii", "replace").strip() if fh else ""
                    try:
                        out.labels.append(int(text))
                    except ValueError:
                        out.bad_labels.append(f"{k}.cls={text!r}")
            close_sample()
    except (tarfile.TarError, EOFError) as exc:
        raise ShardError(path, f"not a valid tar file ({exc})") from exc
    except OSError as exc:
        raise ShardError(path, f"cannot read: {exc.strerror or exc}") from exc
    return out


def count_samples(path: Path) -> int:
    """Samples in an adopted shard (raises ``ShardError`` if it is not a tar)."""
    structure = read_structure(path, read_labels=False)
    if structure.samples == 0:
        raise ShardError(path, "tar holds no files; not a WebDataset shard")
    return structure.samples
