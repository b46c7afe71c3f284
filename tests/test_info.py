"""``info``: a .torrent path, a magnet (no metadata), a bare info-hash, and bad sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from tests.conftest import (
    TRACKER,
    WEB_SEED,
    CliRun,
    ConsoleRun,
    Created,
    CreateRun,
    assert_one_line_error,
)


@pytest.fixture
def made(image_folder: Path, create: CreateRun) -> Created:
    return create(image_folder, "--web-seed", WEB_SEED, "--comment", "pets for tests")


def info_json(cli: CliRun, source: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("info", source, "--json").stdout)
    return doc


def test_info_torrent_json_matches_libtorrent(made: Created, cli: CliRun) -> None:
    doc = info_json(cli, str(made.torrent))
    ti = lt.torrent_info(str(made.torrent))
    fs = ti.layout()
    assert doc["has_metadata"] is True
    assert doc["infohash"] == made.infohash == str(ti.info_hashes().v1)
    assert doc["name"] == ti.name() == "pets"
    assert doc["files"] == [
        [fs.file_path(i).split("/", 1)[1], fs.file_size(i)] for i in range(fs.num_files())
    ]
    assert doc["size"] == ti.total_size() == made.result["bytes"]
    assert doc["piece_size"] == ti.piece_length()
    assert doc["piece_count"] == ti.num_pieces()
    assert doc["trackers"] == [[TRACKER]]
    assert doc["web_seeds"] == [WEB_SEED]
    assert doc["private"] is False
    assert doc["comment"] == "pets for tests"
    assert doc["magnet"].startswith(f"magnet:?xt=urn:btih:{made.infohash}")
    assert doc["magnet"] == made.result["magnet"]


def test_info_torrent_text(made: Created, cli: CliRun) -> None:
    out = cli("info", str(made.torrent)).stdout
    lines = out.splitlines()
    assert "name       pets" in lines
    assert f"infohash   {made.infohash}" in lines
    assert f"tier 0     {TRACKER}" in lines
    assert f"web seed   {WEB_SEED}" in lines
    assert "comment    pets for tests" in lines
    assert "private    no" in lines
    for entry in made.manifest["shards"]:
        assert f"  {entry['bytes']:>14,}  {entry['path']}" in lines
    assert lines[-1] == f"magnet     {made.result['magnet']}"


def test_info_magnet_has_no_metadata(made: Created, cli: CliRun) -> None:
    magnet = made.result["magnet"]
    doc = info_json(cli, magnet)
    assert doc["has_metadata"] is False
    assert doc["infohash"] == made.infohash
    assert doc["name"] == "pets"
    assert doc["trackers"] == [[TRACKER]]
    assert doc["web_seeds"] == [WEB_SEED]
    assert doc["files"] == []
    assert doc["piece_count"] == 0
    out = cli("info", magnet).stdout
    assert "unknown until metadata is fetched" in out
    assert f"infohash   {made.infohash}" in out


def test_info_bare_infohash(cli: CliRun) -> None:
    infohash = "0123456789ABCDEF0123456789abcdef01234567"
    doc = info_json(cli, infohash)
    assert doc["has_metadata"] is False
    assert doc["infohash"] == infohash.lower()
    assert doc["magnet"].startswith(f"magnet:?xt=urn:btih:{infohash.lower()}")


def _bencode(value: Any) -> bytes:
    return lt.bencode(value)


@pytest.mark.parametrize(
    "case",
    [
        "malformed magnet",
        "magnet without xt",
        "not a torrent",
        "empty file",
        "39 hex digits",
        "no such path",
        "unsafe path in torrent",
    ],
)
def test_bad_source_is_one_line(case: str, tmp_path: Path, console: ConsoleRun) -> None:
    text = tmp_path / "notes.torrent"
    if case == "malformed magnet":
        source = "magnet:?xt=urn:btih:nothex&dn=x"
    elif case == "magnet without xt":
        source = "magnet:?dn=only-a-name"
    elif case == "not a torrent":
        text.write_text("<html>not found</html>\n")
        source = str(text)
    elif case == "empty file":
        text.write_bytes(b"")
        source = str(text)
    elif case == "39 hex digits":
        source = "a" * 39
    elif case == "no such path":
        source = str(tmp_path / "missing.torrent")
    else:
        info = {
            b"name": b"x",
            b"piece length": 16384,
            b"pieces": bytes(20),
            b"files": [{b"length": 1, b"path": [b"..", b"escape"]}],
        }
        text.write_bytes(_bencode({b"info": info}))
        source = str(text)
    proc = console("info", source)
    line = assert_one_line_error(proc, source, code=1)
    if case == "39 hex digits":
        assert "40 hex digits" in line
    if case == "unsafe path in torrent":
        assert "unsafe file name '..'" in line
    proc = console("info", source, "--json")
    assert_one_line_error(proc, source, code=1)
