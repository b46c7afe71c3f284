"""Bad input, generated: every parser answers with a torrentds error, never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrentds.dataset import manifest
from torrentds.errors import TorrentdsError
from torrentds.sidecar import config
from torrentds.torrent import metainfo

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid_torrent(tmp: Path) -> bytes:
    data, _ = metainfo.build_torrent(
        "ds",
        [("train/train-000000.tar", 40000), ("torrentds.json", 100)],
        16384,
        bytes(20 * 3),
        [["http://127.0.0.1:6969/announce"]],
        ["http://127.0.0.1:1/"],
    )
    return data


@FUZZ
@given(st.text(max_size=200))
def test_magnet_like_strings(text: str) -> None:
    try:
        metainfo.parse_source("magnet:?" + text)
    except TorrentdsError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_are_not_a_torrent(blob: bytes) -> None:
    try:
        metainfo.read_torrent(blob, "fuzz.torrent")
    except TorrentdsError as exc:
        assert str(exc).startswith("fuzz.torrent: ")


@FUZZ
@given(st.data())
def test_mutated_torrents(data: st.DataObject) -> None:
    good = bytearray(_valid_torrent(Path()))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(good) - 1))
        good[i] = data.draw(st.integers(0, 255))
    try:
        info = metainfo.read_torrent(bytes(good), "m.torrent")
    except TorrentdsError:
        return
    for path, _ in info.files:  # what survives must still be a safe relative path
        assert ".." not in path.split("/") and not path.startswith("/") and "\0" not in path


@pytest.mark.parametrize("name", ["..", "a/../../etc", "/abs", "nul\0byte", ""])
def test_unsafe_names_refused(name: str) -> None:
    t, _ = metainfo.build_torrent(
        "ds", [("ok.tar", 100)], 16384, bytes(20), [["http://127.0.0.1:6969/announce"]]
    )
    evil = t.replace(b"6:ok.tar", f"{len(name.encode())}:{name}".encode())
    with pytest.raises(TorrentdsError):
        metainfo.read_torrent(evil, "evil.torrent")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["schema", "name", "layout", "piece_size", "classes", "shards", "splits"]),
        _json,
    )
)
def test_manifests(doc: dict[str, Any]) -> None:
    doc.setdefault("schema", 1)
    try:
        manifest.parse(json.dumps(doc), "torrentds.json")
    except TorrentdsError as exc:
        assert str(exc).startswith("torrentds.json: ")


@FUZZ
@given(st.dictionaries(st.sampled_from(["session", "api", "dataset", "other"]), _json))
def test_configs(doc: dict[str, Any]) -> None:
    try:
        config.parse(doc, "torrentds.toml")
    except TorrentdsError as exc:
        assert str(exc).startswith("torrentds.toml: ")


@pytest.mark.parametrize(
    "args",
    [
        ["info", "magnet:?xt=urn:btih:" + "z" * 40],
        ["info", "magnet:?dn=only-a-name"],
        ["get", "magnet:?xt=urn:btih:" + "0" * 39, "--listen", "127.0.0.1:0"],
        ["get", "-d", "/nonexistent/x", "1" * 41],
    ],
)
def test_cli_bad_sources_one_line(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "torrentds", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode in (1, 2)
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
