"""``verify`` (a dataset folder against its manifest and torrent, offline) and
``info`` (what a .torrent, magnet, URL or info-hash says)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from torrentds.dataset import hashing, manifest, shardcheck
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import ShardError, StorageError, UsageError
from torrentds.progress import Reporter, SilentReporter
from torrentds.statedir import STATE_DIR, TORRENT_COPY
from torrentds.torrent import metainfo, piececheck


def info(source: str) -> metainfo.TorrentInfo:
    """What a .torrent, magnet, URL or info-hash says (magnets carry no file list)."""
    return metainfo.parse_source(source).info


@dataclass(frozen=True)
class SplitReport:
    split: str
    shards: int
    samples: int
    classes_seen: int
    extensions: list[str]


@dataclass
class VerifyReport:
    folder: str
    torrent: str | None
    pieces_checked: int = 0
    shards_checked: int = 0
    problems: list[str] = field(default_factory=list)
    splits: list[SplitReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    folder: Path, torrent: Path | None = None, reporter: Reporter | None = None
) -> VerifyReport:
    """Offline check of a dataset folder: pieces, sha256, WebDataset structure.

    With ``torrent``, ``folder`` may also be any torrent's data (no
    ``torrentds.json``; for a single-file torrent, the file itself): then
    only its pieces are checked, and a note says so.
    """
    rep = reporter or SilentReporter()
    folder = Path(os.path.abspath(folder))
    if not folder.exists():
        raise StorageError(folder, "no such folder")
    if torrent is None and (folder / STATE_DIR / TORRENT_COPY).is_file():
        torrent = folder / STATE_DIR / TORRENT_COPY
    if torrent is None and not folder.is_dir():
        raise UsageError(folder, "not a folder: give the .torrent it belongs to (--torrent)")
    has_manifest = folder.is_dir() and (folder / manifest.MANIFEST_NAME).exists()
    # Without a .torrent the manifest is all there is to check against: its
    # absence is an error then (manifest.load says so).
    doc = manifest.load(folder) if has_manifest or torrent is None else None
    report = VerifyReport(str(folder), str(torrent) if torrent else None)

    if torrent is not None:
        try:
            data = torrent.read_bytes()
        except OSError as exc:
            raise StorageError(torrent, f"cannot read: {exc.strerror or exc}") from exc
        tinfo = metainfo.read_torrent(data, str(torrent))
        if doc is not None:
            report.problems += _compare_files(doc, tinfo, folder)
        advance = rep.stage("pieces", tinfo.size)
        report.problems += [str(p) for p in piececheck.check(data, folder, str(torrent), advance)]
        report.pieces_checked = tinfo.piece_count

    if doc is None:
        what = "a single file" if not folder.is_dir() else f"no {manifest.MANIFEST_NAME}"
        report.notes.append(
            f"{folder}: {what}; checked its pieces against the torrent only "
            "(no sha256 or WebDataset structure without a manifest)"
        )
    else:
        _verify_shards(doc, folder, rep, report)
    # A file the torrent and the manifest both expect is reported missing once.
    report.problems = list(dict.fromkeys(report.problems))
    return report


def _verify_shards(doc: Manifest, folder: Path, rep: Reporter, report: VerifyReport) -> None:
    """The manifest's checks: sha256, samples, extensions, labels, unlisted shards."""
    report.problems += _unlisted_shards(doc, folder)
    advance = rep.stage("shards", sum(s.bytes for s in doc.shards))

    def check(entry: ShardEntry) -> tuple[list[str], shardcheck.ShardStructure | None]:
        return _check_shard(folder, entry, len(doc.classes), advance)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(check, doc.shards))
    report.shards_checked = len(doc.shards)
    for split in doc.splits:
        exts: dict[frozenset[str], int] = {}
        labels: set[int] = set()
        samples = 0
        for entry, (problems, structure) in zip(doc.shards, results, strict=True):
            if entry.split != split:
                continue
            report.problems += problems
            if structure is not None:
                samples += structure.samples
                labels.update(structure.labels)
                for k, v in structure.extension_sets.items():
                    exts[k] = exts.get(k, 0) + v
        if len(exts) > 1:
            common = max(exts, key=lambda k: exts[k])
            odd = [sorted(k) for k in exts if k != common]
            report.problems.append(
                f"{split}: samples differ in extensions: most have {sorted(common)}, others {odd}"
            )
        all_exts = sorted(set().union(*exts)) if exts else []
        report.splits.append(
            SplitReport(split, len(doc.shards_of(split)), samples, len(labels), all_exts)
        )


def _compare_files(doc: Manifest, tinfo: metainfo.TorrentInfo, folder: Path) -> list[str]:
    in_torrent = dict(tinfo.files)
    out = []
    for s in doc.shards:
        size = in_torrent.get(s.path)
        if size is None:
            out.append(f"{folder / s.path}: listed in the manifest but not in the torrent")
        elif size != s.bytes:
            out.append(f"{folder / s.path}: manifest says {s.bytes} bytes, torrent {size}")
    return out


def _unlisted_shards(doc: Manifest, folder: Path) -> list[str]:
    listed = {s.path for s in doc.shards}
    found = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.tar")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return [
        f"{folder / rel}: shard on disk is not in the manifest"
        for rel in found
        if rel not in listed
    ]


def _check_shard(
    folder: Path,
    entry: ShardEntry,
    n_classes: int,
    advance: Callable[[int], None],
) -> tuple[list[str], shardcheck.ShardStructure | None]:
    path = folder / entry.path
    if not path.is_file():
        return [f"{path}: missing"], None
    size = path.stat().st_size
    if size != entry.bytes:
        return [f"{path}: {size} bytes, manifest says {entry.bytes}"], None
    sha256 = hashing.sha256_file(path, advance)
    problems = []
    if sha256 != entry.sha256:
        problems.append(f"{path}: sha256 {sha256[:12]}… != manifest {entry.sha256[:12]}…")
    try:
        st = shardcheck.read_structure(path)
    except ShardError as exc:
        return [*problems, str(exc)], None
    if st.samples != entry.samples:
        problems.append(f"{path}: {st.samples} samples, manifest says {entry.samples}")
    if st.duplicate_keys:
        problems.append(f"{path}: duplicate sample keys {st.duplicate_keys[:3]}")
    if st.bad_labels:
        problems.append(f"{path}: unreadable labels {st.bad_labels[:3]}")
    if n_classes:
        bad = sorted({x for x in st.labels if not 0 <= x < n_classes})
        if bad:
            problems.append(f"{path}: label {bad[0]} outside [0, {n_classes})")
    return problems, st
