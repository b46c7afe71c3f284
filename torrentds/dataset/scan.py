"""Read a dataset folder and decide what it holds: the plan ``pack`` executes.

Four forms are recognised, in this order:

* a folder that already holds ``*.tar`` shards: adopted as they are;
* Tiny-ImageNet-200's own layout (``wnids.txt``, ``train/<wnid>/images``,
  ``val/images`` + ``val_annotations.txt``, optional ``test/images``);
* an ImageFolder tree (``SPLIT/CLASS/IMAGE``);
* anything else: generic samples keyed by relative path without extension.

Everything is sorted by name so the same input always gives the same plan.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from torrentds.errors import InputError

IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"})
SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test"})
# Written by torrentds itself into a dataset folder; never counted as data.
OWN_FILES = frozenset({"torrentds.json", "SHA256SUMS"})

Layout = Literal["adopted", "tiny-imagenet", "imagefolder", "generic"]


@dataclass(frozen=True)
class SourceFile:
    """One input file: absolute path, extension stored in the tar, size."""

    path: Path
    ext: str
    size: int


@dataclass(frozen=True)
class Sample:
    """One WebDataset sample: its key, its files, and its label if any."""

    key: str
    files: tuple[SourceFile, ...]
    label: int | None = None


@dataclass(frozen=True)
class AdoptedShard:
    rel: str
    split: str
    size: int


@dataclass
class Plan:
    """What a dataset folder holds, ready to pack (or to adopt)."""

    root: Path
    layout: Layout
    classes: tuple[str, ...] = ()
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    adopted: list[AdoptedShard] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        if self.layout == "adopted":
            return sum(s.size for s in self.adopted)
        return sum(f.size for samples in self.splits.values() for s in samples for f in s.files)


def scan(root: Path) -> Plan:
    """Walk ``root`` and return its plan; raises ``InputError`` naming the path."""
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise InputError(root, "no such folder")
    if not root.is_dir():
        raise InputError(root, "not a folder")
    files = _walk(root)
    if not files:
        raise InputError(root, "folder is empty (no files to pack)")

    if any(rel.endswith(".tar") for rel in files):
        return _adopt(root, files)
    if (root / "wnids.txt").is_file() and (root / "train").is_dir():
        return _tiny_imagenet(root, files)
    image_plan = _imagefolder(root, files)
    if image_plan is not None:
        return image_plan
    return _generic(root, files)


def _walk(root: Path) -> dict[str, int]:
    """Relative POSIX path -> size of every regular, non-hidden file.

    Symlinks are followed only to files inside ``root``; names must be UTF-8.
    """
    found: dict[str, int] = {}
    real_root = root.resolve()

    def visit(folder: Path, rel_prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise InputError(folder, f"cannot list folder: {exc.strerror}") from exc
        for entry in entries:
            path = Path(entry.path)
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    os.fsencode(path).decode("utf-8", "replace"), "file name is not valid UTF-8"
                ) from exc
            if entry.name.startswith("."):
                continue  # .torrentds/, .DS_Store and friends are not data
            rel = f"{rel_prefix}{entry.name}"
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise InputError(path, f"symlink points outside the dataset folder ({target})")
                if target.is_dir():
                    raise InputError(path, "symlinked folders are not followed; copy or move it")
                if not target.exists():
                    raise InputError(path, "broken symlink")
            try:
                st = path.stat()
            except OSError as exc:
                raise InputError(path, f"cannot read: {exc.strerror}") from exc
            if stat.S_ISDIR(st.st_mode):
                visit(path, rel + "/")
            elif stat.S_ISREG(st.st_mode):
                if not os.access(path, os.R_OK):
                    raise InputError(path, "file is not readable (permission denied)")
                found[rel] = st.st_size
            else:
                raise InputError(path, "not a regular file")

    visit(root, "")
    return found


def _adopt(root: Path, files: dict[str, int]) -> Plan:
    plan = Plan(root=root, layout="adopted")
    for rel, size in files.items():
        if rel in OWN_FILES:
            continue
        if not rel.endswith(".tar"):
            plan.ignored.append(rel)
            continue
        parts = rel.split("/")
        if len(parts) > 1:
            split = parts[0]
        else:
            stem = parts[0].removesuffix(".tar")
            split = stem.rsplit("-", 1)[0] if "-" in stem else "train"
        plan.adopted.append(AdoptedShard(rel=rel, split=split, size=size))
    empty = [s.rel for s in plan.adopted if s.size == 0]
    if empty:
        raise InputError(root / empty[0], "empty .tar file; not a valid tar shard")
    return plan


def _key_of(stem: str) -> str:
    # WebDataset splits a member name at the first dot of its last component,
    # so a dot inside a key would cut it in two.
    return stem.replace(".", "_")


def _ext_of(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def _tiny_imagenet(root: Path, files: dict[str, int]) -> Plan:
    wnids_path = root / "wnids.txt"
    try:
        wnids = [w.strip() for w in wnids_path.read_text("utf-8").splitlines() if w.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(wnids_path, f"cannot read class list: {exc}") from exc
    if not wnids:
        raise InputError(wnids_path, "no classes listed")
    classes = tuple(sorted(set(wnids)))
    index = {c: i for i, c in enumerate(classes)}
    plan = Plan(root=root, layout="tiny-imagenet", classes=classes)

    train: list[Sample] = []
    for rel, size in files.items():
        parts = rel.split("/")
        if len(parts) == 4 and parts[0] == "train" and parts[2] == "images":
            wnid = parts[1]
            if wnid not in index:
                raise InputError(root / rel, f"class {wnid!r} is not in wnids.txt")
            train.append(_image_sample(root, rel, size, index[wnid]))
    if not train:
        raise InputError(root / "train", "no images in train/<wnid>/images/")
    plan.splits["train"] = train

    annotations = _val_annotations(root)
    val: list[Sample] = []
    for rel, size in files.items():
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "val" and parts[1] == "images":
            val_wnid = annotations.get(parts[2])
            if val_wnid is None:
                raise InputError(root / rel, "image has no line in val/val_annotations.txt")
            wnid = val_wnid
            if wnid not in index:
                raise InputError(
                    root / "val/val_annotations.txt",
                    f"class {wnid!r} of {parts[2]} is not in wnids.txt",
                )
            val.append(_image_sample(root, rel, size, index[wnid]))
    if val:
        plan.splits["val"] = val

    test = [
        _image_sample(root, rel, size, None)
        for rel, size in files.items()
        if rel.startswith("test/images/") and rel.count("/") == 2
    ]
    if test:
        plan.splits["test"] = test
    _check_unique_keys(root, plan)
    return plan


def _val_annotations(root: Path) -> dict[str, str]:
    path = root / "val" / "val_annotations.txt"
    if not path.exists():
        return {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read: {exc}") from exc
    out: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        cols = line.split("\t")
        if len(cols) < 2:
            if line.strip():
                raise InputError(path, f"line {number}: expected 'FILE<TAB>WNID ...'")
            continue
        out[cols[0]] = cols[1]
    return out


def _image_sample(root: Path, rel: str, size: int, label: int | None) -> Sample:
    name = rel.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    return Sample(
        key=_key_of(stem), files=(SourceFile(root / rel, _ext_of(name), size),), label=label
    )


def _imagefolder(root: Path, files: dict[str, int]) -> Plan | None:
    """An ImageFolder plan, or None when ``root`` is not one."""
    if not all(_ext_of(rel) in IMAGE_EXTS for rel in files):
        return None
    depths = {rel.count("/") for rel in files}
    if depths == {2}:
        classes = tuple(sorted({rel.split("/")[1] for rel in files}))
        index = {c: i for i, c in enumerate(classes)}
        plan = Plan(root=root, layout="imagefolder", classes=classes)
        for rel, size in files.items():
            split, cls, _ = rel.split("/")
            plan.splits.setdefault(split, []).append(_image_sample(root, rel, size, index[cls]))
        plan.splits = dict(sorted(plan.splits.items()))
        _check_unique_keys(root, plan, per_class_fallback=True)
        return plan
    flat = sorted(rel for rel in files if rel.count("/") == 1 and rel.split("/")[0] in SPLIT_NAMES)
    if flat:
        split = flat[0].split("/")[0]
        raise InputError(
            root / split, f"image folder has no classes: images must sit in {split}/<class>/<image>"
        )
    return None


def _check_unique_keys(root: Path, plan: Plan, per_class_fallback: bool = False) -> None:
    for split, samples in plan.splits.items():
        keys = [s.key for s in samples]
        if len(set(keys)) != len(keys) and per_class_fallback:
            # Same image name in two classes: key by class/stem for this split.
            plan.splits[split] = samples = [
                Sample(key=f"{s.files[0].path.parent.name}/{s.key}", files=s.files, label=s.label)
                for s in samples
            ]
            keys = [s.key for s in samples]
        if len(set(keys)) != len(keys):
            # Still clashing (``a.b.png`` and ``a_b.png`` in one class): two samples
            # with one key would be merged by WebDataset readers.
            dup = next(k for k in keys if keys.count(k) > 1)
            raise InputError(root / split, f"two images share the sample key {dup!r}")


def _generic(root: Path, files: dict[str, int]) -> Plan:
    plan = Plan(root=root, layout="generic")
    tops = {rel.split("/")[0] for rel in files}
    by_split = all("/" in rel for rel in files) and tops <= SPLIT_NAMES
    grouped: dict[str, dict[str, list[SourceFile]]] = {}
    for rel, size in files.items():
        split, inner = rel.split("/", 1) if by_split else ("train", rel)
        folder, _, name = inner.rpartition("/")
        stem, dot, ext = name.partition(".")
        key = f"{folder}/{stem}" if folder else stem
        ext = ext if dot else "bin"
        bucket = grouped.setdefault(split, {}).setdefault(key, [])
        if any(f.ext == ext for f in bucket):
            raise InputError(root / rel, f"two files map to the same sample member {key}.{ext}")
        bucket.append(SourceFile(root / rel, ext, size))
    for split in sorted(grouped):
        plan.splits[split] = [
            Sample(key=k, files=tuple(sorted(v, key=lambda f: f.ext)))
            for k, v in sorted(grouped[split].items())
        ]
    return plan
