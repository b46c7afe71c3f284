"""``get`` and ``seed``: a source or a folder checked and turned into what the
engine and the job need, then one job run on its own libtorrent session."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from torrentds import options, statedir
from torrentds.dataset import manifest
from torrentds.errors import StorageError, UsageError
from torrentds.options import GetOptions, JobOptions, ordering_of
from torrentds.swarm import events, order, runner
from torrentds.swarm.job import Job
from torrentds.swarm.resume import read_resume
from torrentds.torrent import engine, layout, metainfo


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
        **options.same_named(opts, JobOptions),  # seed limits, peers, web seeds, timeout…
        save_path=directory,
        layout_checked=src.torrent is not None,
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
    root_name = _check_seed_folder(folder, src.info, opts.torrent)
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


def _check_seed_folder(folder: Path, info: metainfo.TorrentInfo, torrent: Path) -> str | None:
    """Whether ``folder`` holds ``info``'s data (every file, at its size); the
    torrent's root folder name for libtorrent (None for a single file)."""
    if info.single_file:
        if not folder.is_file():
            raise StorageError(
                folder,
                f"not a file, but {torrent} is a single-file torrent: give the file ({info.name})",
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
            raise StorageError(folder, f"not a folder, but {torrent} is a multi-file torrent")
        # ``files`` holds no BEP 47 pad files: they are never on disk.
        expected = [(folder / path, size) for path, size in info.files]
        root_name = folder.name
    for on_disk, size in expected:
        if not on_disk.is_file() or on_disk.stat().st_size != size:
            raise StorageError(
                on_disk,
                f"missing or not {size} bytes; this folder does not hold the torrent's data",
            )
    return root_name
