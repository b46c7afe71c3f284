"""Inputs that once hung a get or took a sidecar down, each fetched for real.

Every torrent here is built with libtorrent from files the test writes, and
served by a plain libtorrent session in this process (it checks nothing of
ours, so a torrent with a hostile ``torrentds.json`` can be seeded); the
downloader is the real ``torrentds`` console script on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import libtorrent as lt
import pytest

from tests.ltseed import PIECE, Seeder, make_torrent
from tests.procs import ISOLATED, TORRENTDS, Torrentds, running, wait_until
from tests.test_sidecar import SESSION, Api, dataset_toml, start_sidecar


def shard_folder(root: Path, name: str, manifest: str | None, shards: int = 2) -> Path:
    folder = root / name
    (folder / "train").mkdir(parents=True)
    for i in range(shards):
        (folder / "train" / f"train-{i:06d}.tar").write_bytes(os.urandom(3 * PIECE + 100 * i))
    if manifest is not None:
        (folder / "torrentds.json").write_text(manifest)
    return folder


def get(source: str, dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *TORRENTDS,
            "get",
            source,
            "-d",
            str(dest),
            "--json",
            *ISOLATED,
            "--timeout",
            "30",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TORRENTDS, *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess[str], subject: str, code: int) -> str:
    """Exit ``code`` and one ``torrentds: error:`` line on stderr naming ``subject``
    (stdout holds the --json events)."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {done.stderr!r}"
    assert lines[0].startswith("torrentds: error: "), lines[0]
    assert subject in lines[0], f"{subject!r} not named in {lines[0]!r}"
    return lines[0]


BAD_MANIFESTS = {
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "5,000-digit number": '{"schema": 1, "piece_size": ' + "7" * 5000 + "}",
    "empty file": "",
}


@pytest.mark.parametrize("kind", list(BAD_MANIFESTS))
def test_a_bad_manifest_fails_in_one_line_and_tells_readers(
    kind: str, tmp_path: Path, seeders: list[Seeder]
) -> None:
    src = tmp_path / "src"
    shard_folder(src, "ds", BAD_MANIFESTS[kind])
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    dest = tmp_path / "dl"
    started = time.monotonic()
    done = get(str(tmp_path / "ds.torrent"), dest, "--peer", seeders[0].peer)
    took = time.monotonic() - started
    assert "torrentds.json" in assert_one_line_error(done, "torrentds.json", code=1)
    assert took < 25, f"took {took:.0f} s: it waited for --timeout instead of failing"
    report = json.loads((dest / "ds" / ".torrentds" / "error.json").read_text())
    assert "torrentds.json" in report["message"]
    waited = run("wait", str(dest / "ds"), "--timeout", "20")
    assert "the download failed" in assert_one_line_error(waited, "ds", code=1)


def test_one_bad_dataset_leaves_the_sidecar_and_the_other_dataset_running(
    tmp_path: Path, seeders: list[Seeder]
) -> None:
    src = tmp_path / "src"
    shard_folder(src, "bad", BAD_MANIFESTS["deeply nested"])
    shard_folder(src, "good", None, shards=3)
    bad = make_torrent(src, "bad", tmp_path / "bad.torrent")
    good = make_torrent(src, "good", tmp_path / "good.torrent")
    seeders += [Seeder(src, bad), Seeder(src, good, rate=256 << 10)]
    conf = tmp_path / "sidecar.toml"
    data = tmp_path / "data"
    conf.write_text(
        SESSION
        + dataset_toml(str(tmp_path / "bad.torrent"), data, seeders[0].peer)
        + dataset_toml(str(tmp_path / "good.torrent"), data, seeders[1].peer)
    )
    proc, port = start_sidecar(conf)
    api = Api(port)
    with running(proc):
        wait_until(
            lambda: api.status().get(seeders[0].infohash, {}).get("state") == "error",
            30,
            "the bad dataset to fail",
            0.2,
        )
        failed = api.status()[seeders[0].infohash]
        assert "torrentds.json" in failed["error"] and "\n" not in failed["error"]
        assert (data / "bad" / ".torrentds" / "error.json").is_file()
        # The other dataset was still downloading when its neighbour failed, and finishes.
        assert api.status()[seeders[1].infohash]["state"] != "error"
        wait_until(
            lambda: api.status()[seeders[1].infohash]["state"] == "seeding",
            60,
            "the good dataset to complete",
            0.2,
        )
        assert proc.proc.poll() is None
        removed = api.call("DELETE", f"/torrents/{seeders[0].infohash}")
        assert removed["removed"]["state"] == "removed"
        assert seeders[0].infohash not in api.status()
        api.call("DELETE", f"/torrents/{seeders[0].infohash}", 404)
        proc.kill(signal.SIGTERM)
        assert proc.finish(15) == 0
    for i in range(3):
        name = f"train/train-{i:06d}.tar"
        assert (data / "good" / name).read_bytes() == (src / "good" / name).read_bytes()


def test_an_empty_shard_list_and_an_empty_last_file_complete(
    tmp_path: Path, seeders: list[Seeder]
) -> None:
    src = tmp_path / "src"
    manifest = {
        "schema": 1,
        "name": "ds",
        "layout": "generic",
        "piece_size": PIECE,
        "classes": [],
        "splits": {},
        "shards": [],
    }
    folder = shard_folder(src, "ds", json.dumps(manifest), shards=1)
    (folder / "zz-empty").write_bytes(b"")  # zero bytes, last in the torrent: no piece at all
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    dest = tmp_path / "dl"
    done = get(str(tmp_path / "ds.torrent"), dest, "--peer", seeders[0].peer, "--timeout", "20")
    assert done.returncode == 0, done.stderr
    assert (dest / "ds" / "zz-empty").is_file()
    assert (dest / "ds" / "zz-empty").stat().st_size == 0


def test_what_is_in_the_way_is_one_line(tmp_path: Path, seeders: list[Seeder]) -> None:
    src = tmp_path / "src"
    shard_folder(src, "ds", None)
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    magnet = f"magnet:?xt=urn:btih:{seeders[0].infohash}&dn=ds"
    peer = ("--peer", seeders[0].peer, "--timeout", "20")

    file_there = tmp_path / "a"
    file_there.mkdir()
    (file_there / "ds").write_text("not a folder")
    line = assert_one_line_error(get(magnet, file_there, *peer), "ds", code=1)
    assert "is a file" in line

    state_is_file = tmp_path / "b"
    (state_is_file / "ds").mkdir(parents=True)
    (state_is_file / "ds" / ".torrentds").write_text("")
    assert_one_line_error(get(magnet, state_is_file, *peer), ".torrentds", code=1)

    resume_is_file = tmp_path / "c"
    (resume_is_file / ".torrentds").mkdir(parents=True)
    (resume_is_file / ".torrentds" / "resume").write_text("")
    assert_one_line_error(get(magnet, resume_is_file, *peer), "resume", code=1)


def test_garbage_in_the_ready_log_is_skipped(tmp_path: Path, seeders: list[Seeder]) -> None:
    src = tmp_path / "src"
    shard_folder(src, "ds", None)
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    state = tmp_path / "dl" / "ds" / ".torrentds"
    state.mkdir(parents=True)
    (state / "ready.jsonl").write_bytes(b'\xff\xfe{"path": \x80}\n{"path": 5, "sha256": 7}\n[1]\n')
    done = get(str(tmp_path / "ds.torrent"), tmp_path / "dl", "--peer", seeders[0].peer)
    assert done.returncode == 0, done.stderr
    urls = run("urls", str(tmp_path / "dl" / "ds"), "--split", "train")
    assert urls.returncode == 0, urls.stderr
    assert len(urls.stdout.split()) == 2


def test_a_reader_learns_within_seconds_that_the_downloader_died(
    tmp_path: Path, seeders: list[Seeder]
) -> None:
    """No error.json can be written by a process killed with -9 (or on a full
    disk): the lock it held tells readers instead."""
    src = tmp_path / "src"
    shard_folder(src, "ds", None, shards=6)
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data, rate=32 << 10))  # too slow to finish in this test
    dest = tmp_path / "dl"
    getter = Torrentds(
        [
            "get",
            str(tmp_path / "ds.torrent"),
            "-d",
            str(dest),
            "--json",
            *ISOLATED,
            "--peer",
            seeders[0].peer,
        ]
    )
    with running(getter):
        getter.wait_event("metadata", 20)
        reader = subprocess.Popen(
            [*TORRENTDS, "wait", str(dest / "ds"), "--all", "--timeout", "60"],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)  # the reader is waiting on a live downloader
        assert reader.poll() is None
        getter.kill(signal.SIGKILL)
        killed = time.monotonic()
        _, err = reader.communicate(timeout=30)
        took = time.monotonic() - killed
    assert reader.returncode == 1, err
    assert "no torrentds process is fetching" in err
    assert not (dest / "ds" / ".torrentds" / "error.json").exists()
    assert took < 10, f"the reader needed {took:.1f} s"


def test_a_torrent_of_500000_pieces_stops_on_time(tmp_path: Path) -> None:
    """Deadlines are set a window at a time: on every piece they blocked the
    loop, and --timeout 5 took 92 s."""
    fs = lt.file_storage()
    fs.add_file("big/data.tar", 500_000 * PIECE)
    ct = lt.create_torrent(fs, PIECE, lt.create_torrent.v1_only)
    for i in range(500_000):
        ct.set_hash(i, b"\x01" * 20)
    torrent = tmp_path / "big.torrent"
    torrent.write_bytes(bytes(lt.bencode(ct.generate())))
    started = time.monotonic()
    done = get(str(torrent), tmp_path / "dl", "--timeout", "5")
    took = time.monotonic() - started
    assert "gave up after 5 s" in assert_one_line_error(done, "big", code=1)
    assert took < 15, f"--timeout 5 took {took:.1f} s"

    getter = Torrentds(["get", str(torrent), "-d", str(tmp_path / "dl2"), "--json", *ISOLATED])
    with running(getter):
        getter.wait_event("progress", 30)
        getter.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = getter.finish(30)
        took = time.monotonic() - sent
    assert code == 143, getter.stderr
    assert took < 5, f"SIGTERM took {took:.1f} s"


def test_a_symlink_at_the_dataset_folder_is_refused(tmp_path: Path, seeders: list[Seeder]) -> None:
    src = tmp_path / "src"
    shard_folder(src, "ds", None)
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "ds").symlink_to(elsewhere)
    magnet = f"magnet:?xt=urn:btih:{seeders[0].infohash}&dn=ds"
    for source in (str(tmp_path / "ds.torrent"), magnet):
        done = get(source, dest, "--peer", seeders[0].peer, "--timeout", "20")
        assert "outside" in assert_one_line_error(done, "ds", code=1)
        assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a read-only tmpfs (root)")
def test_a_read_only_target_is_one_line(tmp_path: Path, seeders: list[Seeder]) -> None:
    src = tmp_path / "src"
    shard_folder(src, "ds", None)
    data = make_torrent(src, "ds", tmp_path / "ds.torrent")
    seeders.append(Seeder(src, data))
    target = tmp_path / "ro"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,ro", "tmpfs", str(target)], check=True)
    try:
        done = get(str(tmp_path / "ds.torrent"), target, "--peer", seeders[0].peer)
        assert_one_line_error(done, str(target), code=1)
    finally:
        subprocess.run(["umount", str(target)], check=True)
