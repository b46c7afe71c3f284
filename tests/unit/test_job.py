"""The job's state machine on a real, isolated libtorrent session, second-scale.

No peer: pieces are handed to libtorrent with ``add_piece`` (as a peer's
blocks would be), so libtorrent really checks, writes, flushes and saves
resume data, and the job sees the same alerts as in a download. The session
listens on 127.0.0.1 port 0 with DHT, LSD, UPnP and NAT-PMP off; the
torrents name no tracker and no web seed. Each wait is a bounded loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from torrentds import options
from torrentds.dataset import hashing, manifest
from torrentds.dataset.demo_data import make_tiny_imagenet
from torrentds.errors import DuplicateTorrentError, ManifestError, TorrentdsError
from torrentds.options import JobOptions
from torrentds.service import create
from torrentds.statedir import resume_file
from torrentds.swarm import events
from torrentds.swarm.job import Job
from torrentds.swarm.phase import Phase
from torrentds.swarm.runner import Runner
from torrentds.torrent import engine, layout, metainfo
from torrentds.training import handoff

QUIET = options.SessionOptions(listen="127.0.0.1:0")


@dataclass(frozen=True)
class Made:
    origin: Path  # the dataset folder (NAME-wds)
    torrent: bytes
    name: str


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    base = tmp_path_factory.mktemp("made")
    raw = make_tiny_imagenet(
        base / "tiny", classes=3, train_per_class=12, val_per_class=4, image_size=32
    )
    result = create.create(
        create.CreateOptions(
            raw,
            shard_size=64 << 10,
            piece_size=16 << 10,
            default_trackers=False,
            output=base / "tiny.torrent",
        )
    )
    return Made(Path(result.dataset_dir), (base / "tiny.torrent").read_bytes(), result.name)


def pieces_of(origin: Path, torrent: bytes) -> list[bytes]:
    """Each piece's bytes, from the files in torrent order (v1, no pad files)."""
    files = layout.torrent_layout(torrent)
    size = lt.torrent_info(torrent).piece_length()
    data = b"".join((origin / f.path.split("/", 1)[1]).read_bytes() for f in files)
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass
class Rig:
    """One engine, one runner, the events every job emitted."""

    engine: engine.Engine
    runner: Runner
    seen: list[events.JobEvent] = field(default_factory=list)

    def job(self, save: Path, torrent: bytes, **opts: Any) -> Job:
        spec = engine.AddSpec(save_path=save, torrent=torrent, hold_files=True)
        job = Job(self.engine, spec, JobOptions(save_path=save, **opts), self.seen.append)
        self.runner.add(job)
        return job

    def until(self, what: Callable[[], bool], seconds: float, label: str) -> None:
        deadline = time.monotonic() + seconds
        while not what():
            assert time.monotonic() < deadline, f"timed out waiting for {label}"
            self.runner.step(0.05)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.seen]


@pytest.fixture
def rig() -> Iterator[Rig]:
    eng = engine.Engine(QUIET)
    yield Rig(eng, Runner(eng, publishing=True))
    eng.close()


def feed(job: Job, pieces: list[bytes], which: range | list[int]) -> None:
    for i in which:
        job.ref.add_piece(i, pieces[i])


def feed_all(rig: Rig, job: Job, pieces: list[bytes]) -> None:
    """The manifest's pieces, then (once it is read and the shards are wanted) the
    rest, as a swarm sends them: bytes of a file at priority 0 would go to
    libtorrent's part file, not to the shard's file."""
    index = job.manifest_index
    assert index is not None
    span = layout.torrent_layout(job.ref.torrent_bytes())[index].pieces(len(pieces[0]))
    feed(job, pieces, span)
    rig.until(lambda: job.phase is not Phase.MANIFEST, 10, "the manifest to be read")
    feed(job, pieces, [i for i in range(len(pieces)) if i not in span])


def test_manifest_first_then_read_only_after_a_flush(rig: Rig, made: Made, tmp_path: Path) -> None:
    job = rig.job(tmp_path, made.torrent, seed_hours=1.0)
    assert job.phase is Phase.MANIFEST and job.book.shards == []
    files = job.plan.file_priorities
    index = job.manifest_index
    assert index is not None
    assert files[index] == 7 and sum(files) == 7  # nothing but the manifest is wanted
    pieces = pieces_of(made.origin, made.torrent)
    span = layout.torrent_layout(made.torrent)[index].pieces(len(pieces[0]))
    feed(job, pieces, span)
    rig.until(
        lambda: job.flushes.manifest_wanted or job.flushes.manifest_flushed,
        10,
        "the manifest's pieces",
    )
    rig.until(lambda: job.phase is Phase.DOWNLOADING, 10, "the manifest to be read")
    assert job.flushes.manifest_flushed  # read from disk only after a flush put it there
    assert len(job.book.shards) == len(manifest.load(made.origin).shards)
    assert max(job.plan.file_priorities) == 7 and job.plan.file_priorities.count(0) < len(files)


def test_a_shard_is_ready_only_after_resume_data_holds_it(
    rig: Rig, made: Made, tmp_path: Path
) -> None:
    job = rig.job(tmp_path, made.torrent, seed_hours=1.0)
    pieces = pieces_of(made.origin, made.torrent)
    at_ready: dict[str, set[int]] = {}
    resume = resume_file(tmp_path, job.ref.infohash)

    def on_event(event: events.JobEvent) -> None:
        rig.seen.append(event)
        if isinstance(event, events.ShardReady):
            # What a rerun after kill -9 at this instant would find on disk.
            atp = lt.read_resume_data(resume.read_bytes())
            at_ready[event.path] = {i for i, h in enumerate(atp.have_pieces) if h}

    job.emit = on_event
    feed_all(rig, job, pieces)
    rig.until(lambda: job.phase is Phase.SEEDING, 20, "completion")
    shards = {s.entry.path: s for s in job.book.shards}
    assert set(at_ready) == set(shards)
    for path, held in at_ready.items():
        assert set(shards[path].pieces) <= held, path
        assert hashing.sha256_file(shards[path].file_path) == shards[path].entry.sha256
    assert job.place is not None
    lines = handoff.ready_log_path(job.place.dataset).read_text().splitlines()
    logged = [json.loads(line)["path"] for line in lines]
    assert sorted(logged) == sorted(shards)
    kinds = rig.kinds()
    assert kinds.index("completed") > max(i for i, k in enumerate(kinds) if k == "shard_ready")


def test_three_sha256_failures_end_the_job_alone(rig: Rig, made: Made, tmp_path: Path) -> None:
    bad_origin = tmp_path / "origin"
    doc = manifest.load(made.origin)
    bad = doc.shards[1]
    bad_origin.mkdir()
    for name in [s.path for s in doc.shards] + [manifest.SUMS_NAME]:
        (bad_origin / name).parent.mkdir(parents=True, exist_ok=True)
        (bad_origin / name).write_bytes((made.origin / name).read_bytes())
    text = (made.origin / manifest.MANIFEST_NAME).read_text()
    wrong = ("0" if bad.sha256[0] != "0" else "1") + bad.sha256[1:]
    (bad_origin / manifest.MANIFEST_NAME).write_text(text.replace(bad.sha256, wrong))
    files = [(s.path, s.bytes) for s in doc.shards] + [
        (n, (bad_origin / n).stat().st_size) for n in (manifest.SUMS_NAME, manifest.MANIFEST_NAME)
    ]
    _, hashes = hashing.hash_layout([(bad_origin / p, n) for p, n in files], doc.piece_size)
    torrent, _ = metainfo.build_torrent(made.name, files, doc.piece_size, hashes, [])

    good = rig.job(tmp_path / "good", made.torrent, seed_hours=1.0)
    job = rig.job(tmp_path / "bad", torrent, seed_hours=1.0)
    pieces = pieces_of(bad_origin, torrent)
    feed_all(rig, job, pieces)
    rig.until(lambda: job.ref.infohash in rig.runner.finished, 30, "the job to fail")
    error = rig.runner.finished[job.ref.infohash].error
    assert isinstance(error, ManifestError) and bad.path in error.subject
    assert "keeps disagreeing" in error.reason
    assert job.ready_log is not None and job.place is not None
    assert bad.path not in job.ready_log.logged
    failed = [e for e in rig.seen if isinstance(e, events.Failed)]
    assert [e.error for e in failed] == [error]  # kept as the object, not a string
    report = handoff.read_error(job.place.dataset)
    assert report is not None and "keeps disagreeing" in report
    warnings = [e.message for e in rig.seen if isinstance(e, events.Warned)]
    assert sum("does not match the manifest" in w for w in warnings) == 3
    assert good.ref.infohash in rig.runner.jobs  # the other job goes on


def test_a_timeout_is_the_jobs_error_and_resume_data_is_saved(
    rig: Rig, made: Made, tmp_path: Path
) -> None:
    job = rig.job(tmp_path, made.torrent, timeout=0.5)
    rig.until(lambda: job.ref.infohash in rig.runner.finished, 10, "the timeout")
    error = rig.runner.finished[job.ref.infohash].error
    assert isinstance(error, TorrentdsError) and "gave up after 0.5 s" in str(error)
    assert resume_file(tmp_path, job.ref.infohash).is_file()  # the runner's save on the way out
    with pytest.raises(TorrentdsError, match="gave up"):
        rig.runner.finished[job.ref.infohash].outcome()


def test_adding_a_torrent_twice_is_a_duplicate(rig: Rig, made: Made, tmp_path: Path) -> None:
    rig.job(tmp_path, made.torrent, seed_hours=1.0)
    with pytest.raises(DuplicateTorrentError):
        rig.job(tmp_path / "again", made.torrent, seed_hours=1.0)


def test_seed_limits_end_the_job_after_completion(rig: Rig, made: Made, tmp_path: Path) -> None:
    job = rig.job(tmp_path, made.torrent, seed_hours=0.0)
    pieces = pieces_of(made.origin, made.torrent)
    feed_all(rig, job, pieces)
    rig.until(lambda: job.ref.infohash in rig.runner.finished, 20, "the job to end")
    result = rig.runner.finished[job.ref.infohash].outcome()
    assert result.shards_ready == result.shards_total == len(job.book.shards) > 0
    kinds = rig.kinds()
    assert kinds[-1] == "done" and "completed" in kinds
    assert "seeding" not in kinds  # --seed-hours 0: the limit is reached at once


def test_the_view_shows_a_milestone_before_it_is_told(rig: Rig, made: Made, tmp_path: Path) -> None:
    """Readers on other threads read ``Runner.view``: when a job tells "completed",
    the view it can read already says seeding, with the seed clock running."""
    rows_when_told: list[dict[str, Any]] = []

    def watch(event: events.JobEvent) -> None:
        rig.seen.append(event)
        if isinstance(event, events.Completed):
            rows_when_told.extend(rig.runner.view.rows)

    spec = engine.AddSpec(save_path=tmp_path, torrent=made.torrent, hold_files=True)
    job = Job(rig.engine, spec, JobOptions(save_path=tmp_path, seed_hours=1.0), watch)
    rig.runner.add(job)
    assert [r["infohash"] for r in rig.runner.view.rows] == [job.ref.infohash]
    feed_all(rig, job, pieces_of(made.origin, made.torrent))
    rig.until(lambda: "completed" in rig.kinds(), 20, "completion")
    (row,) = rows_when_told
    assert row["state"] == "seeding" and 0 < row["seeding_left"] <= 3600
    shards = rig.runner.view.shards[job.ref.infohash]
    assert len(shards) == len(job.book.shards) and {s["state"] for s in shards} == {"ready"}
    rig.runner.remove(job.ref.infohash)
    (ended,) = rig.runner.view.rows
    assert ended["state"] == "done" and rig.runner.view.shards == {}
