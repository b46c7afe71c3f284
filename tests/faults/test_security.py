"""``get`` never writes outside ``-d DIR``; private torrents stay private and work.

(``create`` never following a symlink out of the dataset folder is tested in
tests/test_create.py, ``test_bad_input_is_one_line_and_leaves_nothing``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import libtorrent as lt
import pytest

from tests.conftest import snapshot
from tests.faults.evil_peer import MetadataPeer, bencode
from tests.faults.helpers import assert_intact, get, seed
from tests.netfixtures import create_dataset
from tests.procs import ISOLATED, Opentracker, Torrentds, running

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)


def _unsafe(tmp_path: Path) -> dict[str, bytes]:
    """Info dicts whose file names would leave the download folder."""
    outside = str(tmp_path / "outside" / "escape.tar").encode()

    def info(name: bytes, paths: list[list[bytes]] | None) -> bytes:
        doc: dict[bytes, object] = {b"name": name, b"piece length": 16384, b"pieces": bytes(20)}
        if paths is None:
            doc[b"length"] = 100
        else:
            doc[b"files"] = [{b"length": 100, b"path": p} for p in paths]
        return bencode(doc)

    return {
        "dot-dot element": info(b"ds", [[b"..", b"escape.tar"]]),
        "deeper dot-dot": info(b"ds", [[b"a", b"..", b"..", b"..", b"escape.tar"]]),
        "slashes in an element": info(b"ds", [[b"../../escape.tar"]]),
        "absolute path": info(b"ds", [[outside]]),
        "name ..": info(b"..", None),
        "name with a slash": info(b"../escape.tar", None),
    }


def _outside_untouched(tmp_path: Path, dest: Path, before: dict[str, str]) -> None:
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(dest.name)}
    assert after == before, f"written outside {dest}: {set(after) ^ set(before)}"
    escaped = [p for p in tmp_path.parent.rglob("escape*") if not p.is_relative_to(dest)]
    assert not escaped, f"files escaped {dest}: {escaped}"
    assert not (tmp_path / "outside").exists()


CASES = list(_unsafe(Path("/x")))


@pytest.mark.parametrize("case", CASES)
def test_unsafe_torrent_file_is_refused(tmp_path: Path, case: str) -> None:
    info = _unsafe(tmp_path)[case]
    torrent = tmp_path / "evil.torrent"
    torrent.write_bytes(bencode({b"announce": b"http://127.0.0.1:1/announce", b"info": info}))
    dest = tmp_path / "dl"
    before = snapshot(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "torrentds", "get", str(torrent), "-d", str(dest), *ISOLATED],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torrentds: error: "), done.stderr
    assert "unsafe" in lines[0] or "name" in lines[0], lines[0]
    _outside_untouched(tmp_path, dest, before)
    assert not dest.exists() or not any(dest.rglob("*.tar"))


def test_unsafe_metadata_from_a_peer_stays_inside(tmp_path: Path) -> None:
    """A magnet whose metadata (from a peer) has unsafe names: libtorrent drops
    ``..`` elements, torrentds refuses what is left unsafe; nothing lands outside."""
    dest = tmp_path / "dl"
    before = snapshot(tmp_path)
    peers = {case: MetadataPeer(info) for case, info in _unsafe(tmp_path).items()}
    runs: dict[str, Torrentds] = {}
    try:
        for case, peer in peers.items():
            runs[case] = get(
                f"magnet:?xt=urn:btih:{peer.infohash.hex()}",
                dest / case.replace(" ", "-"),
                "--peer",
                f"127.0.0.1:{peer.port}",
                "--timeout",
                "4",
            )
        with running(*runs.values()):
            for case, leecher in runs.items():
                assert leecher.finish(30) == 1, (case, leecher.stderr)
    finally:
        for peer in peers.values():
            peer.close()
    outcome = {}
    for case, leecher in runs.items():
        assert peers[case].metadata_sent >= 1, f"{case}: the metadata was never asked for"
        assert "Traceback" not in leecher.stderr
        folder = dest / case.replace(" ", "-")
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        outcome[case] = [f for f in files if ".torrentds" not in f] or leecher.stderr.strip()
    print("\nMETADATA", json.dumps(outcome, indent=1))
    _outside_untouched(tmp_path, dest, before)
    for path in dest.rglob("*"):
        assert path.resolve().is_relative_to(dest.resolve()), path


def test_private_torrent(tmp_path: Path, tracker: Opentracker) -> None:
    ds = create_dataset(tmp_path, tracker, "--private", "--name", "private-ds", per_class=20)
    assert lt.torrent_info(str(ds.torrent)).priv()
    info = subprocess.run(
        [sys.executable, "-m", "torrentds", "info", str(ds.torrent), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(info.stdout)["private"] is True
    seeder = seed(ds)
    with running(seeder):
        leecher = get(str(ds.torrent), tmp_path / "dl", "--peer", f"127.0.0.1:{seeder.port}")
        with running(leecher):
            assert leecher.finish(60) == 0, leecher.stderr
    assert_intact(tmp_path / "dl" / ds.name)
    copy = tmp_path / "dl" / ds.name / ".torrentds" / "dataset.torrent"
    assert lt.torrent_info(str(copy)).priv()  # the kept copy is private too
