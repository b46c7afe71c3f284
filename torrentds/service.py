"""The facade the CLI (and later the HTTP API) call: create, info, verify.

Inputs and outputs are plain dataclasses that serialise to JSON; nothing here
prints. Long work reports through a ``Reporter``.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from torrentds import options, statedir
from torrentds.dataset import hashing, manifest, pack, scan, shardcheck
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import (
    ManifestError,
    OutputExistsError,
    ShardError,
    StorageError,
    UsageError,
)
from torrentds.options import GetOptions, JobOptions, ordering_of
from torrentds.progress import Reporter, SilentReporter
from torrentds.statedir import STATE_DIR, TORRENT_COPY
from torrentds.swarm import events, order, runner
from torrentds.swarm.job import Job
from torrentds.swarm.resume import read_resume
from torrentds.torrent import engine, layout, metainfo, piececheck
from torrentds.training import consume

DEFAULT_SHARD_SIZE = 256 << 20


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


def create(opts: CreateOptions, reporter: Reporter | None = None) -> CreateResult:
    """Pack (or adopt) ``opts.data_dir`` and write its manifest and .torrent."""
    rep = reporter or SilentReporter()
    data_dir = Path(os.path.abspath(opts.data_dir))
    if opts.shard_size <= 0:
        raise UsageError(str(opts.shard_size), "shard size must be positive")
    if opts.piece_size is not None:
        _check_piece_size(opts.piece_size)
    plan = scan.scan(data_dir)
    name = opts.name or data_dir.name
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(name, "not a usable torrent name")
    output = Path(os.path.abspath(opts.output or Path("torrents") / f"{name}.torrent"))
    if output.exists() and not opts.force:
        raise OutputExistsError(output, "exists (use --force to replace it)")
    trackers = [[t] for t in opts.trackers]
    if opts.default_trackers:
        trackers = [list(tier) for tier in metainfo.DEFAULT_TRACKERS] + trackers
    warnings = [
        f"{plan.root / rel}: not a .tar shard, left out of the torrent" for rel in plan.ignored
    ]
    _mkdir(output.parent)  # before any work: a bad -o fails fast, leaving nothing behind

    if plan.layout == "adopted":
        root = root_now = data_dir
        finish: Callable[[bool], None] = _no_move
        piece_size = opts.piece_size or pack.choose_piece_size(plan.total_bytes)
        entries, known = _adopt(plan, piece_size, rep)
    else:
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
        finish = _mover(staging, root)
        root_now = staging  # everything is written here, then renamed into place
        piece_size = opts.piece_size or pack.choose_piece_size(plan.total_bytes)
        try:
            entries, known = _pack(plan, staging, opts.shard_size, piece_size, rep)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    try:
        doc = Manifest(
            name=name,
            layout=plan.layout,
            piece_size=piece_size,
            classes=list(plan.classes),
            shards=manifest.assign_pieces(entries, piece_size),
        )
        manifest.save(root_now, doc)
        files = [(s.path, s.bytes) for s in doc.shards]
        files += [
            (manifest.SUMS_NAME, (root_now / manifest.SUMS_NAME).stat().st_size),
            (manifest.MANIFEST_NAME, (root_now / manifest.MANIFEST_NAME).stat().st_size),
        ]
        _, pieces = hashing.hash_layout(
            [(root_now / rel, size) for rel, size in files], piece_size, known=known
        )
        data, info = metainfo.build_torrent(
            name,
            files,
            piece_size,
            pieces,
            trackers,
            opts.web_seeds,
            opts.private,
            opts.comment,
            datetime.now(UTC).replace(microsecond=0) if opts.creation_date else None,
        )
        state = root_now / STATE_DIR
        state.mkdir(exist_ok=True)
        statedir.write_atomic(state / TORRENT_COPY, data)
        finish(opts.force)
        statedir.write_atomic(output, data)
    except BaseException:
        if plan.layout != "adopted":
            shutil.rmtree(staging, ignore_errors=True)
        raise

    if opts.check_web_seeds and files:
        for url in opts.web_seeds:
            warning = metainfo.check_web_seed(url, name, files[0][0])
            if warning:
                warnings.append(warning)
    return CreateResult(
        name=name,
        infohash=info.infohash,
        magnet=info.magnet,
        torrent=str(output),
        dataset_dir=str(root),
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


def _check_piece_size(size: int) -> None:
    if size < 16 << 10 or size & (size - 1):
        raise UsageError(str(size), "piece size must be a power of two of at least 16 KiB")


def _mkdir(folder: Path) -> None:
    """Create ``folder`` and its parents; a path under a file is a one-line error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(folder, f"cannot create folder: {exc.strerror or exc}") from exc


def _no_move(force: bool) -> None:
    return None


def _mover(staging: Path, root: Path) -> Callable[[bool], None]:
    """Swap the finished staging folder into place, replacing ``root`` if forced."""

    def move(force: bool) -> None:
        old: Path | None = None
        if root.exists():
            if not force:
                raise OutputExistsError(root, "exists (use --force to replace it)")
            old = root.with_name(f".{root.name}.old-{os.getpid()}")
            os.rename(root, old)
        os.rename(staging, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    return move


def _pack(
    plan: scan.Plan, out: Path, shard_size: int, piece_size: int, rep: Reporter
) -> tuple[list[ShardEntry], dict[int, hashing.FileDigest]]:
    advance = rep.stage("packing", plan.total_bytes)
    packed = pack.pack(plan, out, shard_size, piece_size, advance)
    entries = [ShardEntry(p.rel, p.split, p.size, p.digest.sha256, p.samples) for p in packed]
    return entries, {i: p.digest for i, p in enumerate(packed)}


def _adopt(
    plan: scan.Plan, piece_size: int, rep: Reporter
) -> tuple[list[ShardEntry], dict[int, hashing.FileDigest]]:
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


def _manifest_first(files: list[layout.FileEntry]) -> tuple[int, ...] | None:
    """Only the manifest wanted at first: it says what every shard must be."""
    # A multi-file torrent's paths are NAME/...; a single file has no manifest.
    names = [f.path.split("/", 1)[1] if "/" in f.path else "" for f in files]
    if manifest.MANIFEST_NAME not in names:
        return None if not names else tuple(order.NORMAL for _ in names)
    return tuple(order.TOP if n == manifest.MANIFEST_NAME else order.SKIP for n in names)


def prepare_get(opts: GetOptions) -> tuple[engine.AddSpec, JobOptions, str]:
    """Check a get's options and turn them into what the engine and job need."""
    options.check_seed_limits(opts.seed_hours, opts.seed_ratio)
    ordering = ordering_of(opts)
    src = metainfo.parse_source(opts.source, opts.default_trackers)
    directory = Path(os.path.abspath(opts.directory))
    statedir.check_writable(directory)
    files = layout.torrent_layout(src.torrent) if src.torrent is not None else []
    # The torrent's files, and our own state beside them (resume data, the
    # state of single-file torrents), must stay inside DIR.
    statedir.check_inside(directory, [*(f.path for f in files), *statedir.WRITTEN_IN_DIR])
    # Resume data is filed under the id the engine gives the torrent.
    infohash = layout.infohash_of(src.torrent) if src.torrent is not None else src.info.infohash
    resume_data = read_resume(statedir.resume_file(directory, infohash))
    spec = engine.AddSpec(
        save_path=directory,
        torrent=src.torrent,
        magnet=src.info.magnet if src.torrent is None else None,
        resume=resume_data,
        trackers=opts.trackers,
        web_seeds=opts.web_seeds,
        peers=opts.peers,
        hold_files=True,
        file_priorities=_manifest_first(files),
    )
    job_opts = JobOptions(
        save_path=directory,
        layout_checked=src.torrent is not None,
        seed_hours=opts.seed_hours,
        seed_ratio=opts.seed_ratio,
        peers=opts.peers,
        web_seeds=opts.web_seeds,
        trackers=opts.trackers,
        timeout=opts.timeout,
        ordering=ordering,
    )
    return spec, job_opts, src.info.name


def get(opts: GetOptions, emit: events.Emit, stop: threading.Event) -> events.JobResult:
    """Download SOURCE into ``opts.directory``, verify every shard, then seed."""
    spec, job_opts, name = prepare_get(opts)
    return _run_job(opts.session, spec, job_opts, emit, stop, name)


@dataclass(frozen=True)
class SeedOptions:
    folder: Path
    torrent: Path
    seed_hours: float = math.inf
    seed_ratio: float | None = None
    skip_check: bool = False
    peers: tuple[str, ...] = ()
    session: options.SessionOptions = field(default_factory=options.SessionOptions)


def seed(opts: SeedOptions, emit: events.Emit, stop: threading.Event) -> events.JobResult:
    """Seed an existing dataset folder (hash-checked first unless ``skip_check``).

    Any torrent's data can be seeded: ``folder`` is its folder (whatever its
    name), or for a single-file torrent the file itself (named as in the torrent).
    """
    options.check_seed_limits(opts.seed_hours, opts.seed_ratio)
    folder = Path(os.path.abspath(opts.folder))
    if not folder.exists():
        raise StorageError(folder, "no such folder")
    src = metainfo.parse_source(str(opts.torrent))
    if src.torrent is None:
        raise UsageError(str(opts.torrent), "seed needs a .torrent file or URL, not a magnet")
    info = src.info
    if info.single_file:
        if not folder.is_file():
            raise StorageError(
                folder,
                f"not a file, but {opts.torrent} is a single-file torrent: give the file "
                f"({info.name})",
            )
        if folder.name != info.name:
            # libtorrent finds the file by the torrent's name in its folder.
            raise UsageError(
                folder, f"the torrent names its file {info.name!r}: seed a file of that name"
            )
        expected = [(folder, size) for _, size in info.files]
        root_name = None
    else:
        if not folder.is_dir():
            raise StorageError(folder, f"not a folder, but {opts.torrent} is a multi-file torrent")
        # ``files`` holds no BEP 47 pad files: they are never on disk.
        expected = [(folder / path, size) for path, size in info.files]
        root_name = folder.name
    for on_disk, size in expected:
        if not on_disk.is_file() or on_disk.stat().st_size != size:
            raise StorageError(
                on_disk,
                f"missing or not {size} bytes; this folder does not hold the torrent's data",
            )
    spec = engine.AddSpec(
        save_path=folder.parent,
        torrent=src.torrent,
        seed_mode=opts.skip_check,
        peers=opts.peers,
        root_name=root_name,
    )
    job_opts = JobOptions(
        save_path=folder.parent,
        seed_hours=opts.seed_hours,
        seed_ratio=opts.seed_ratio,
        peers=opts.peers,
        seeding_only=True,
        skip_check=opts.skip_check,
    )
    return _run_job(opts.session, spec, job_opts, emit, stop, src.info.name)


def _run_job(
    session: options.SessionOptions,
    spec: engine.AddSpec,
    job_opts: JobOptions,
    emit: events.Emit,
    stop: threading.Event,
    name: str,
) -> events.JobResult:
    eng = engine.Engine(session)
    try:
        with runner.errors_as_ours(name or "job"):
            job = Job(eng, spec, job_opts, emit, known_name=name)
        run = runner.Runner(eng)
        return runner.run_job(run, job, lambda: run.run(stop, until_empty=True))
    finally:
        eng.close()


def wait_ready(
    folder: Path, split: str = "train", shards: int | None = None, timeout: float | None = None
) -> consume.ReadyStatus:
    """Block until ``shards`` (None: all) shards of ``split`` are verified."""
    return consume.wait_ready(folder, split, shards, timeout)


def ready_urls(folder: Path, split: str = "train", pattern: bool = False) -> list[str]:
    """The split's shards verified so far (ready order), or its brace pattern."""
    if pattern:
        return [consume.shard_pattern(folder, split)]
    return consume.ready_now(folder, split).paths


__all__ = [
    "CreateOptions",
    "CreateResult",
    "ManifestError",
    "VerifyReport",
    "create",
    "info",
    "verify",
]
