"""Single-file torrents (the Academic Torrents ImageNet archives are single files).

A single file lands at DIR/NAME, where aria2c and transmission put it, and
torrentds keeps its own state beside it in DIR/.torrentds/files/NAME, never
in a folder of the same name. Fetched for real from a libtorrent seeder on
127.0.0.1; readers are the real ``torrentds wait``/``urls`` and the Python API.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import torrentds
from tests.ltseed import PIECE, Seeder, make_torrent
from tests.procs import ISOLATED, TORRENTDS, Torrentds, running


def a_tar(path: Path, members: int, size: int) -> None:
    """A real tar of random members (what a training reader would open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for i in range(members):
            member = path.parent / f"m{i}.bin"
            member.write_bytes(os.urandom(size))
            tar.add(member, arcname=f"sample{i:04d}.bin")
            member.unlink()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TORRENTDS, *args], capture_output=True, text=True, timeout=60)


def test_a_single_tar_lands_at_dir_name_and_is_handed_to_readers(
    tmp_path: Path, seeders: list[Seeder]
) -> None:
    src = tmp_path / "src"
    a_tar(src / "archive.tar", 40, 20_000)
    data = make_torrent(src, "archive.tar", tmp_path / "archive.torrent")
    seeders.append(Seeder(src, data))
    dest = tmp_path / "dl"
    done = run(
        "get", str(tmp_path / "archive.torrent"), "-d", str(dest), "--json", *ISOLATED,
        "--peer", seeders[0].peer, "--timeout", "30",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    landed = dest / "archive.tar"
    assert landed.is_file() and sha256(landed) == sha256(src / "archive.tar")
    assert sorted(p.name for p in dest.iterdir()) == [".torrentds", "archive.tar"]
    state = dest / ".torrentds" / "files" / "archive.tar"
    lines = [json.loads(x) for x in (state / "ready.jsonl").read_text().splitlines()]
    assert [(r["path"], r["split"], r["infohash"]) for r in lines] == [
        ("archive.tar", "data", seeders[0].infohash)
    ]
    assert lines[0]["sha256"] == sha256(landed)

    waited = run("wait", str(landed), "--split", "data", "--all", "--timeout", "10")
    assert waited.returncode == 0, waited.stderr
    urls = run("urls", str(landed), "--split", "data")
    assert urls.stdout.split() == [str(landed)]
    assert list(torrentds.ready_shards(landed, "data", timeout=10)) == [str(landed)]
    with tarfile.open(next(iter(torrentds.ready_shards(landed, "data", timeout=10)))) as tar:
        assert len(tar.getnames()) == 40


def test_a_single_file_resumes_after_kill_9(tmp_path: Path, seeders: list[Seeder]) -> None:
    src = tmp_path / "src"
    (src / "blob.bin").parent.mkdir(parents=True)
    (src / "blob.bin").write_bytes(os.urandom(200 * PIECE))
    data = make_torrent(src, "blob.bin", tmp_path / "blob.torrent")
    seeders.append(Seeder(src, data, rate=512 << 10))
    dest = tmp_path / "dl"
    args = ["get", str(tmp_path / "blob.torrent"), "-d", str(dest), "--json", *ISOLATED]
    first = Torrentds([*args, "--peer", seeders[0].peer])
    with running(first):
        # Kill once a third is on disk and a periodic resume save has had its chance.
        first.wait_event("progress", 30, lambda e: e["done"] >= 60 * PIECE)
        first.kill(signal.SIGKILL)
    seeders.append(Seeder(src, data))  # a fast seeder too
    second = Torrentds([*args, "--peer", seeders[1].peer, "--peer", seeders[0].peer])
    with running(second):
        assert second.finish(60) == 0, second.stderr
    done = second.wait_event("done", 1)
    assert sha256(dest / "blob.bin") == sha256(src / "blob.bin")
    assert done["downloaded"] < 200 * PIECE, "the rerun fetched everything again"


def test_a_torrent_that_ships_a_torrentds_folder_keeps_it(
    tmp_path: Path, seeders: list[Seeder]
) -> None:
    """Our state must not collide with a torrent's own files."""
    src = tmp_path / "src"
    (src / "odd" / ".torrentds").mkdir(parents=True)
    (src / "odd" / ".torrentds" / "ready.jsonl").write_bytes(os.urandom(5000))
    a_tar(src / "odd" / "train" / "x.tar", 5, 10_000)
    data = make_torrent(src, "odd", tmp_path / "odd.torrent")
    seeders.append(Seeder(src, data))
    dest = tmp_path / "dl"
    done = run(
        "get", str(tmp_path / "odd.torrent"), "-d", str(dest), "--json", *ISOLATED,
        "--peer", seeders[0].peer, "--timeout", "30",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    theirs = dest / "odd" / ".torrentds" / "ready.jsonl"
    assert theirs.read_bytes() == (src / "odd" / ".torrentds" / "ready.jsonl").read_bytes()
    urls = run("urls", str(dest / "odd"), "--split", "train")
    assert urls.stdout.split() == [str(dest / "odd" / "train" / "x.tar")], urls.stderr
