"""``create``: a dataset folder packed (or its shards adopted) into shards, a
manifest and a .torrent, written so that a failure leaves nothing half-made."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from torrentds import statedir
from torrentds.dataset import hashing, manifest, pack, scan, shardcheck
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import OutputExistsError, StorageError, UsageError
from torrentds.progress import Reporter, SilentReporter
from torrentds.statedir import STATE_DIR, TORRENT_COPY
from torrentds.torrent import metainfo, web

DEFAULT_SHARD_SIZE = 256 << 20

Digests = dict[int, hashing.FileDigest]


@dataclass(frozen=True)
class CreateOptions:
    data_dir: Path
    shards_dir: Path | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    piece_size: int | None = None
    trackers: tuple[str, ...] = ()
    default_trackers: bool = True
    web_seeds: tuple[str, ...] = ()
    check_web_seeds: bool = True
    private: bool = False
    comment: str | None = None
    name: str | None = None
    output: Path | None = None
    force: bool = False
    creation_date: bool = False


@dataclass(frozen=True)
class CreateResult:
    name: str
    infohash: str
    magnet: str
    torrent: str
    dataset_dir: str
    layout: str
    shards: int
    samples: int
    bytes: int
    piece_size: int
    pieces: int
    splits: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    """Where the shards end up (``root``) and where they are written first
    (``work``: a staging folder renamed into place at the end, or ``root``
    itself for adopted shards)."""

    root: Path
    work: Path

    @property
    def staged(self) -> bool:
        return self.work != self.root

    def finish(self, force: bool) -> None:
        """Swap the finished staging folder into place, replacing ``root`` if forced."""
        if not self.staged:
            return
        old: Path | None = None
        if self.root.exists():
            if not force:
                raise OutputExistsError(self.root, "exists (use --force to replace it)")
            old = self.root.with_name(f".{self.root.name}.old-{os.getpid()}")
            os.rename(self.root, old)
        os.rename(self.work, self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if self.staged:
            shutil.rmtree(self.work, ignore_errors=True)


def create(opts: CreateOptions, reporter: Reporter | None = None) -> CreateResult:
    """Pack (or adopt) ``opts.data_dir`` and write its manifest and .torrent."""
    rep = reporter or SilentReporter()
    data_dir = Path(os.path.abspath(opts.data_dir))
    _check_sizes(opts)
    plan = scan.scan(data_dir)
    name = _torrent_name(opts, data_dir)
    output = Path(os.path.abspath(opts.output or Path("torrents") / f"{name}.torrent"))
    if output.exists() and not opts.force:
        raise OutputExistsError(output, "exists (use --force to replace it)")
    warnings = [
        f"{plan.root / rel}: not a .tar shard, left out of the torrent" for rel in plan.ignored
    ]
    _mkdir(output.parent)  # before any work: a bad -o fails fast, leaving nothing behind
    target = _target(plan, data_dir, opts)
    piece_size = opts.piece_size or pack.choose_piece_size(plan.total_bytes)
    try:
        if target.staged:
            entries, known = _pack(plan, target.work, opts.shard_size, piece_size, rep)
        else:
            entries, known = _adopt(plan, piece_size, rep)
        doc = Manifest(
            name=name,
            layout=plan.layout,
            piece_size=piece_size,
            classes=list(plan.classes),
            shards=manifest.assign_pieces(entries, piece_size),
        )
        files, data, info = _write_torrent(doc, target.work, known, opts)
        target.finish(opts.force)
        statedir.write_atomic(output, data)
    except BaseException:
        target.discard()
        raise
    if opts.check_web_seeds and files:
        for url in opts.web_seeds:
            warning = web.check_web_seed(url, name, files[0][0])
            if warning:
                warnings.append(warning)
    return CreateResult(
        name=name,
        infohash=info.infohash,
        magnet=info.magnet,
        torrent=str(output),
        dataset_dir=str(target.root),
        layout=plan.layout,
        shards=len(doc.shards),
        samples=sum(s.samples for s in doc.shards),
        bytes=info.size,
        piece_size=piece_size,
        pieces=info.piece_count,
        splits={
            k: {"shards": v.shards, "samples": v.samples, "bytes": v.bytes}
            for k, v in doc.splits.items()
        },
        warnings=warnings,
    )


def _check_sizes(opts: CreateOptions) -> None:
    if opts.shard_size <= 0:
        raise UsageError(str(opts.shard_size), "shard size must be positive")
    size = opts.piece_size
    if size is not None and (size < 16 << 10 or size & (size - 1)):
        raise UsageError(str(size), "piece size must be a power of two of at least 16 KiB")


def _torrent_name(opts: CreateOptions, data_dir: Path) -> str:
    name = opts.name or data_dir.name
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(name, "not a usable torrent name")
    return name


def _target(plan: scan.Plan, data_dir: Path, opts: CreateOptions) -> _Target:
    """Adopted shards stay where they are; packed ones go to a fresh staging
    folder beside ``--shards-dir`` (default: DATA-wds)."""
    if plan.layout == "adopted":
        return _Target(data_dir, data_dir)
    root = Path(os.path.abspath(opts.shards_dir or data_dir.with_name(data_dir.name + "-wds")))
    if root == data_dir or root.is_relative_to(data_dir):
        raise UsageError(root, "--shards-dir must be outside the dataset folder")
    if data_dir.is_relative_to(root):
        # --force would replace (delete) the folder holding the dataset itself.
        raise UsageError(root, "--shards-dir must not contain the dataset folder")
    if root.exists() and not opts.force:
        raise OutputExistsError(root, "exists (use --force to replace it)")
    _mkdir(root.parent)
    staging = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return _Target(root, staging)


def _write_torrent(
    doc: Manifest, work: Path, known: Digests, opts: CreateOptions
) -> tuple[list[tuple[str, int]], bytes, metainfo.TorrentInfo]:
    """The manifest, then the pieces hashed (reusing the shards' digests) and
    the .torrent written into the dataset's state folder."""
    manifest.save(work, doc)
    files = [(s.path, s.bytes) for s in doc.shards]
    files += [
        (manifest.SUMS_NAME, (work / manifest.SUMS_NAME).stat().st_size),
        (manifest.MANIFEST_NAME, (work / manifest.MANIFEST_NAME).stat().st_size),
    ]
    _, pieces = hashing.hash_layout(
        [(work / rel, size) for rel, size in files], doc.piece_size, known=known
    )
    trackers = [[t] for t in opts.trackers]
    if opts.default_trackers:
        trackers = [list(tier) for tier in metainfo.DEFAULT_TRACKERS] + trackers
    data, info = metainfo.build_torrent(
        doc.name,
        files,
        doc.piece_size,
        pieces,
        trackers,
        opts.web_seeds,
        opts.private,
        opts.comment,
        datetime.now(UTC).replace(microsecond=0) if opts.creation_date else None,
    )
    state = work / STATE_DIR
    state.mkdir(exist_ok=True)
    statedir.write_atomic(state / TORRENT_COPY, data)
    return files, data, info


def _mkdir(folder: Path) -> None:
    """Create ``folder`` and its parents; a path under a file is a one-line error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(folder, f"cannot create folder: {exc.strerror or exc}") from exc


def _pack(
    plan: scan.Plan, out: Path, shard_size: int, piece_size: int, rep: Reporter
) -> tuple[list[ShardEntry], Digests]:
    advance = rep.stage("packing", plan.total_bytes)
    packed = pack.pack(plan, out, shard_size, piece_size, advance)
    entries = [ShardEntry(p.rel, p.split, p.size, p.digest.sha256, p.samples) for p in packed]
    return entries, {i: p.digest for i, p in enumerate(packed)}


def _adopt(plan: scan.Plan, piece_size: int, rep: Reporter) -> tuple[list[ShardEntry], Digests]:
    shards = plan.adopted
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(lambda s: shardcheck.count_samples(plan.root / s.rel), shards))
    advance = rep.stage("hashing", plan.total_bytes)
    digests = hashing.hash_files([(plan.root / s.rel, s.size) for s in shards], piece_size, advance)
    entries = [
        ShardEntry(s.rel, s.split, s.size, d.sha256, n)
        for s, d, n in zip(shards, digests, counts, strict=True)
    ]
    return entries, dict(enumerate(digests))
