"""The training side: readers in their own processes tail a real ``get``'s ready log.

Seeder and leecher are real ``torrentds`` processes on 127.0.0.1; readers are
separate Python processes that import only ``torrentds`` (no libtorrent).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import braceexpand
import pytest

from tests.conftest import ConsoleRun, assert_one_line_error
from tests.netfixtures import Dataset
from tests.procs import ISOLATED, Nginx, Torrentds, wait_until
from torrentds.dataset import hashing, manifest
from torrentds.errors import ManifestError, NotReadyError, SidecarError, UsageError
from torrentds.torrent import metainfo
from torrentds.training import consume, handoff

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_webdataset.py"
HEAVY = ("libtorrent", "torf", "click", "requests", "rich")

# A training process: iterate ready_shards, one JSON line per shard with a timestamp.
READER = f"""
import json, sys, time
import torrentds
kwargs = json.loads(sys.argv[1])
print(json.dumps({{"started": time.time()}}), flush=True)
try:
    for path in torrentds.ready_shards(**kwargs):
        print(json.dumps({{"path": path, "time": time.time()}}), flush=True)
except torrentds.TorrentdsError as exc:
    line = {{"error": str(exc), "kind": type(exc).__name__, "time": time.time()}}
    print(json.dumps(line), flush=True)
    sys.exit(1)
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"end": time.time(), "heavy": heavy}}), flush=True)
"""


class Killable(Protocol):
    def kill(self) -> None: ...


@contextmanager
def cleanup(*procs: Killable) -> Iterator[None]:
    """Kill whatever is still running when the block ends (pass or fail)."""
    try:
        yield
    finally:
        for p in procs:
            p.kill()


class Reader:
    """A Python process iterating ``torrentds.ready_shards(**kwargs)``."""

    def __init__(self, env: dict[str, str] | None = None, **kwargs: Any) -> None:
        base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, json.dumps(kwargs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**base, **(env or {})},
        )
        self.lines: list[dict[str, Any]] = []
        self.stderr = ""
        self.threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
        wait_until(lambda: check(self.lines), 20, what)

    @property
    def shards(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "path" in line]

    @property
    def paths(self) -> list[str]:
        return [line["path"] for line in self.shards]

    def last(self) -> dict[str, Any]:
        return self.lines[-1] if self.lines else {}

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"reader did not exit within {timeout} s") from None
        for t in self.threads:
            t.join(5)  # its output ends with the process
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _Popen:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _seed(ds: Dataset, *extra: str, folder: Path | None = None) -> Torrentds:
    return Torrentds(
        [
            "seed",
            str(folder or ds.origin),
            str(ds.torrent),
            "--skip-check",
            "--json",
            *ISOLATED,
            *extra,
        ]
    )


def _get(torrent: Path, dest: Path, seeder: Torrentds | None, *extra: str) -> Torrentds:
    peer = ["--peer", f"127.0.0.1:{seeder.port}"] if seeder is not None else []
    return Torrentds(
        [
            "get",
            str(torrent),
            "-d",
            str(dest),
            "--json",
            *ISOLATED,
            *peer,
            "--timeout",
            "60",
            *extra,
        ]
    )


def _log(folder: Path) -> list[dict[str, Any]]:
    """The ready log's complete records, in order."""
    return [json.loads(line) for line in handoff.ready_log_path(folder).read_text().splitlines()]


def _split_paths(folder: Path, split: str) -> list[str]:
    """``split``'s shard paths in manifest order."""
    return [s.path for s in manifest.load(folder).shards_of(split)]


def _keep_ready(folder: Path, keep: Callable[[int, dict[str, Any]], bool]) -> list[str]:
    """Rewrite ``folder``'s ready log with the records ``keep`` accepts; their paths."""
    records = [r for i, r in enumerate(_log(folder)) if keep(i, r)]
    handoff.ready_log_path(folder).write_text("".join(json.dumps(r) + "\n" for r in records))
    return [r["path"] for r in records]


@pytest.fixture(scope="module")
def downloaded(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder a real ``get`` completed (do not modify: copy it)."""
    dest = tmp_path_factory.mktemp("downloaded")
    seeder = _seed(dataset)
    with cleanup(seeder):
        leecher = _get(dataset.torrent, dest, seeder)
        with cleanup(leecher):
            assert leecher.finish(90) == 0, leecher.stderr
    return dest / dataset.name


@pytest.fixture
def partial(downloaded: Path, tmp_path: Path) -> Path:
    """A copy of ``downloaded`` whose ready log holds only its first two train shards."""
    folder = tmp_path / downloaded.name
    shutil.copytree(downloaded, folder)
    seen: list[str] = []

    def first_two(_: int, record: dict[str, Any]) -> bool:
        if record["split"] == "train" and len(seen) < 2:
            seen.append(record["path"])
            return True
        return False

    _keep_ready(folder, first_two)
    return folder


def test_consumer_reads_while_leecher_downloads(dataset: Dataset, tmp_path: Path) -> None:
    folder = tmp_path / dataset.name
    seeder = _seed(dataset, "--max-upload", "2M")
    with cleanup(seeder):
        leecher = _get(dataset.torrent, tmp_path, seeder)
        reader = Reader(dataset_dir=str(folder), split="train", timeout=60)
        with cleanup(leecher, reader):
            assert leecher.finish(90) == 0, leecher.stderr
            assert reader.finish(30) == 0, reader.stderr
    ready_times = [
        e["time"] for e in leecher.events if e["event"] == "shard_ready" and e["split"] == "train"
    ]
    completed = leecher.wait_event("completed", 1)["time"]
    first_consumed = reader.shards[0]["time"]
    # Training had its first shard while the split's last shard was still on its way.
    assert first_consumed < max(ready_times) <= completed, (first_consumed, max(ready_times))
    # Every train shard once, in the order the ready log got them; nothing else.
    log_order = [str(folder / r["path"]) for r in _log(folder) if r["split"] == "train"]
    assert reader.paths == log_order
    assert sorted(reader.paths) == [str(folder / p) for p in _split_paths(folder, "train")]
    assert reader.last()["heavy"] == []  # the consumer side loaded no libtorrent, torf, …


def test_workers_and_nodes_split_without_duplicates(dataset: Dataset, tmp_path: Path) -> None:
    folder = tmp_path / dataset.name
    seeder = _seed(dataset, "--max-upload", "2M")
    with cleanup(seeder):
        leecher = _get(dataset.torrent, tmp_path, seeder)
        common: dict[str, Any] = {"dataset_dir": str(folder), "split": "train", "timeout": 60}
        workers = [Reader(**common, worker=w, num_workers=2) for w in (0, 1)]
        nodes = [
            Reader(**common, rank=0, world_size=2),
            Reader(env={"RANK": "1", "WORLD_SIZE": "2"}, **common),  # torchrun's variables
        ]
        with cleanup(leecher, *workers, *nodes):
            assert leecher.finish(90) == 0, leecher.stderr
            for proc in (*workers, *nodes):
                assert proc.finish(30) == 0, proc.stderr
    log_order = [str(folder / r["path"]) for r in _log(folder) if r["split"] == "train"]
    in_manifest = [str(folder / p) for p in _split_paths(folder, "train")]
    assert len(log_order) == len(in_manifest) > 4
    # Worker w of 2: the shards whose index in ready order is w modulo 2.
    for w, reader in enumerate(workers):
        assert reader.paths == [p for i, p in enumerate(log_order) if i % 2 == w]
    # Node r of 2: index in the manifest's order (the same on every machine) modulo 2.
    for rank, reader in enumerate(nodes):
        mine = {p for i, p in enumerate(in_manifest) if i % 2 == rank}
        assert reader.paths == [p for p in log_order if p in mine]
    for pair in (workers, nodes):
        a, b = (set(proc.paths) for proc in pair)
        assert not a & b
        assert sorted(a | b) == sorted(in_manifest)
        assert all(len(proc.paths) == len(set(proc.paths)) for proc in pair)


def test_shard_with_wrong_sha256_is_never_ready(
    dataset: Dataset, tmp_path: Path, web: tuple[Nginx, Path]
) -> None:
    # The origin's pieces are right, but its manifest gives one shard a wrong sha256.
    # A torrentds seeder refuses such a folder (it checks the shards too), so the
    # data comes from nginx as a web seed: BEP 19 URL + torrent name + path.
    server, www = web
    (www / "wrongsha").mkdir()
    origin = tmp_path / "origin"
    shutil.copytree(dataset.origin, origin, ignore=shutil.ignore_patterns(".torrentds"))
    doc = manifest.load(origin)
    bad = doc.shards_of("train")[1]
    text = (origin / manifest.MANIFEST_NAME).read_text()
    wrong = ("0" if bad.sha256[0] != "0" else "1") + bad.sha256[1:]
    (origin / manifest.MANIFEST_NAME).write_text(text.replace(bad.sha256, wrong))
    files = [(s.path, s.bytes) for s in doc.shards] + [
        (name, (origin / name).stat().st_size)
        for name in (manifest.SUMS_NAME, manifest.MANIFEST_NAME)
    ]
    _, pieces = hashing.hash_layout([(origin / p, n) for p, n in files], doc.piece_size)
    web_seed = f"{server.url}wrongsha/"
    data, _ = metainfo.build_torrent(
        dataset.name, files, doc.piece_size, pieces, [], web_seeds=[web_seed]
    )
    torrent = tmp_path / "wrong.torrent"
    torrent.write_bytes(data)
    (www / "wrongsha" / dataset.name).symlink_to(origin)

    folder = tmp_path / "dl" / dataset.name
    leecher = _get(torrent, tmp_path / "dl", None)
    with cleanup(leecher):
        assert leecher.finish(90) == 1
    assert "sha256 keeps disagreeing with the manifest" in leecher.stderr, leecher.stderr
    logged = [r["path"] for r in _log(folder)]
    assert bad.path not in logged
    assert logged  # the good shards that arrived were handed on
    # The failure is reported to training: readers stop with the sidecar's message.
    report = handoff.read_error(folder)
    assert report is not None and bad.path in report
    started = time.monotonic()
    with pytest.raises(SidecarError, match="sha256 keeps disagreeing"):
        list(consume.ready_shards(folder, "train", timeout=30))
    assert time.monotonic() - started < 5

    # A new get of the right torrent into the same folder clears the stale report.
    good_seeder = _seed(dataset)
    with cleanup(good_seeder):
        again = _get(dataset.torrent, tmp_path / "dl", good_seeder)
        with cleanup(again):
            assert again.finish(90) == 0, again.stderr
    assert handoff.read_error(folder) is None
    got = list(consume.ready_shards(folder, "train", timeout=10))
    assert sorted(got) == [str(folder / p) for p in _split_paths(folder, "train")]


def test_trainer_starts_before_the_dataset_folder_exists(dataset: Dataset, tmp_path: Path) -> None:
    folder = tmp_path / "dl" / dataset.name
    trainer = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(folder), "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with cleanup(_Popen(trainer)):
        assert trainer.stdout is not None
        first = trainer.stdout.readline()  # printed before it starts waiting
        assert first.startswith("waiting for train shards"), first
        time.sleep(0.5)  # it is polling for a folder that is not there
        assert trainer.poll() is None and not folder.exists()
        seeder = _seed(dataset)
        with cleanup(seeder):
            leecher = _get(dataset.torrent, tmp_path / "dl", seeder)
            with cleanup(leecher):
                assert leecher.finish(90) == 0, leecher.stderr
            out, err = trainer.communicate(timeout=30)
    assert trainer.returncode == 0, err
    lines = out.splitlines()
    expected = {s.path: s.samples for s in manifest.load(folder).shards_of("train")}
    shard_lines = [line for line in lines if line.startswith("shard ")]
    seen = {line.split()[1].rstrip(":"): int(line.split()[2]) for line in shard_lines}
    assert len(shard_lines) == len(expected) and seen == expected
    assert lines[-1].startswith(f"done: {sum(expected.values())} samples from {len(expected)}")


def test_example_reads_the_same_with_tarfile(downloaded: Path) -> None:
    """Without webdataset the example falls back to tarfile and sees the same samples."""
    runs = {}
    for reader, block in (("webdataset", ""), ("tarfile", "sys.modules['webdataset'] = None; ")):
        code = (
            f"import runpy, sys; {block}sys.argv = ['train', {str(downloaded)!r}, '--split', "
            f"'val', '--timeout', '10']; runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert f"reader: {reader}" in done.stdout
        runs[reader] = [line for line in done.stdout.splitlines() if line.startswith("shard ")]
    assert runs["webdataset"] == runs["tarfile"]
    assert len(runs["tarfile"]) == len(_split_paths(downloaded, "val"))


def test_reader_raises_when_error_json_appears(partial: Path) -> None:
    reader = Reader(dataset_dir=str(partial), split="train", timeout=60)
    with cleanup(reader):
        reader.wait_for(lambda lines: sum("path" in x for x in lines) == 2, "two ready shards")
        time.sleep(0.5)  # it is waiting for the third
        assert reader.proc.poll() is None
        handoff.report_error(partial, f"{partial}/train/x.tar: No space left on device")
        reported = time.time()
        assert reader.finish(10) == 1
    last = reader.last()
    assert last["kind"] == "SidecarError"
    assert "the download failed" in last["error"] and "No space left on device" in last["error"]
    assert last["time"] - reported < 2


def test_cli_wait_and_urls(
    downloaded: Path, partial: Path, tmp_path: Path, console: ConsoleRun
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    started = time.monotonic()
    proc = console("wait", str(empty), "--split", "train", "--all", "--timeout", "1")
    line = assert_one_line_error(proc, str(empty), code=1)
    assert "timed out after 1 s" in line
    assert time.monotonic() - started < 10

    train = _split_paths(downloaded, "train")
    proc = console("wait", str(downloaded), "--split", "train", "--all", "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"train: {len(train)} of {len(train)} shards ready\n"
    assert console("wait", str(downloaded), "--shards", "2", "--timeout", "5").returncode == 0

    proc = console("wait", str(partial), "--split", "train", "--all", "--timeout", "1")
    line = assert_one_line_error(proc, str(partial), code=1)
    logged = [r["path"] for r in _log(partial)]
    missing = [p for p in train if p not in logged]
    assert f"2 of {len(train)} train shards ready; missing {missing[0]}, " in line, line
    proc = console("wait", str(partial), "--shards", "2", "--timeout", "1")
    assert proc.returncode == 0, proc.stderr

    # Usage errors: exit 2, one line.
    assert console("wait", str(downloaded), "--shards", "2", "--all").returncode == 2
    proc = console("wait", str(downloaded), "--shards", str(len(train) + 1))
    assert_one_line_error(proc, str(len(train) + 1), code=2)
    proc = console("wait", str(downloaded.parent), "--timeout", "5")  # get's -d, not DIR/NAME
    assert "did you mean" in assert_one_line_error(proc, str(downloaded), code=2)
    proc = console("wait", str(downloaded), "--split", "test", "--timeout", "5")
    assert "no split 'test'" in assert_one_line_error(proc, "torrentds.json", code=2)

    val = _split_paths(downloaded, "val")
    proc = console("urls", str(downloaded), "--split", "val", "--pattern")
    assert proc.returncode == 0, proc.stderr
    pattern = proc.stdout.strip()
    assert pattern == f"{downloaded}/val/val-{{000000..{len(val) - 1:06d}}}.tar"
    assert list(braceexpand.braceexpand(pattern)) == [str(downloaded / p) for p in val]

    proc = console("urls", str(downloaded), "--split", "val")
    assert proc.returncode == 0, proc.stderr
    in_log = [str(downloaded / r["path"]) for r in _log(downloaded) if r["split"] == "val"]
    assert proc.stdout.splitlines() == in_log and sorted(in_log) == sorted(
        str(downloaded / p) for p in val
    )
    proc = console("urls", str(partial), "--split", "train")
    assert proc.stdout.splitlines() == [str(partial / p) for p in logged]
    assert_one_line_error(console("urls", str(tmp_path / "nope")), str(tmp_path / "nope"), code=1)


def test_shard_urls_and_pattern_in_python(downloaded: Path, partial: Path) -> None:
    import torrentds

    train = [str(downloaded / p) for p in _split_paths(downloaded, "train")]
    assert torrentds.shard_urls(downloaded, "train", timeout=1) == train
    assert list(braceexpand.braceexpand(torrentds.shard_pattern(downloaded, "train"))) == train
    # Never a partial list: shard_urls waits for the whole split.
    with pytest.raises(NotReadyError, match=r"2 of \d+ train shards ready; missing"):
        torrentds.shard_urls(partial, "train", timeout=0.5)
    # A gap in the numbering cannot be one brace range.
    doc = manifest.load(partial)
    drop = doc.shards_of("train")[1].path
    doc.shards = [s for s in doc.shards if s.path != drop]
    manifest.save(partial, doc)
    with pytest.raises(ManifestError, match="do not form one numbered range"):
        torrentds.shard_pattern(partial, "train")


def test_torn_last_line_counts_only_when_complete(partial: Path) -> None:
    log = handoff.ready_log_path(partial)
    records = _log(partial)
    line = json.dumps(records[1]) + "\n"
    log.write_text(json.dumps(records[0]) + "\n" + line[:25])  # a write cut short
    assert consume.ready_now(partial, "train").ready == [records[0]["path"]]
    with log.open("a") as fh:
        fh.write(line[25:])
    assert consume.ready_now(partial, "train").ready == [r["path"] for r in records[:2]]
    # After a crash the writer ends a torn line first, so its next record stays whole.
    log.write_text(json.dumps(records[0]) + "\n" + line[:25])
    entry = next(s for s in manifest.load(partial).shards if s.path == records[1]["path"])
    assert handoff.ReadyLog(partial).append(entry) is not None
    assert consume.ready_now(partial, "train").ready == [r["path"] for r in records[:2]]


def test_argument_checks(downloaded: Path) -> None:
    with pytest.raises(UsageError, match="give both"):
        consume.ready_shards(downloaded, worker=0)
    with pytest.raises(UsageError, match="need 0 <= worker < num_workers"):
        consume.ready_shards(downloaded, worker=2, num_workers=2)
    with pytest.raises(UsageError, match="give both"):
        consume.ready_shards(downloaded, rank=1)
    with pytest.raises(UsageError, match="timeout"):
        consume.ready_shards(downloaded, timeout=-1)
    # More workers than shards: the extra ones get nothing and end.
    val = _split_paths(downloaded, "val")
    got = [
        list(consume.ready_shards(downloaded, "val", 5, worker=w, num_workers=len(val) + 1))
        for w in range(len(val) + 1)
    ]
    assert sorted(p for paths in got for p in paths) == sorted(str(downloaded / p) for p in val)
    assert got[-1] == []


def test_package_import_loads_no_libtorrent() -> None:
    code = f"import sys, torrentds; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
