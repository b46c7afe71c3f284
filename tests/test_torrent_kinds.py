"""Torrents of every kind, and from other tools: libtorrent is the truth about them.

v1, v2 and hybrid torrents (hybrids carry BEP 47 pad files), single files,
info dicts with keys out of order, names and URLs torf refuses, 32 MiB pieces,
and torrents made by mktorrent and transmission-create: ``info`` reports the
info-hashes libtorrent computes, the files without pads and a magnet with the
right ``xt``; ``verify`` passes on good data and names the file of a damaged
piece; ``seed`` serves them to a plain libtorrent peer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import libtorrent as lt
import pytest

from tests.conftest import CliRun, ConsoleRun, assert_one_line_error
from tests.corpus import bencode
from tests.procs import ISOLATED, Torrentds, running
from torrentds.torrent import metainfo

ANNOUNCE = "http://127.0.0.1:1/announce"  # nothing listens: no test reaches a tracker
PIECE = 16 << 10
FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}
# No file beside a folder of the same stem (train.json next to train/): libtorrent
# 2.1.1 makes a hybrid torrent of that it cannot load itself.
TREE = {"alpha.bin": 50_000, "sub/beta.bin": 70_000, "sub/deeper/gamma.txt": 3_000, "zero": 0}
DAMAGED = "sub/beta.bin"
SINGLE = ("single.tar", 40_000)


def write_files(root: Path, files: dict[str, int], seed: int = 1) -> None:
    rng = random.Random(seed)
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))


@pytest.fixture(params=["folder", "file"])
def content(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A folder of several files (one empty), or a single file."""
    if request.param == "folder":
        root = tmp_path / "data" / "kinds"
        write_files(root, TREE)
        return root
    write_files(tmp_path / "data", dict([SINGLE]))
    return tmp_path / "data" / SINGLE[0]


def lt_torrent(path: Path, kind: str, piece: int = PIECE, web_seeds: tuple[str, ...] = ()) -> bytes:
    """A .torrent of ``path`` made by libtorrent, checked by loading it back."""
    ct = lt.create_torrent(lt.list_files(str(path)), piece, FLAGS[kind])
    ct.add_tracker(ANNOUNCE)
    for url in web_seeds:
        ct.add_url_seed(url)
    lt.set_piece_hashes(ct, str(path.parent))
    data = bytes(lt.bencode(ct.generate()))
    lt.torrent_info(data)  # raises if libtorrent cannot read what it made
    return data


def info_json(cli: CliRun, source: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("info", source, "--json").stdout)
    return doc


def verify_json(cli: CliRun, target: Path, torrent: Path, expect: int = 0) -> dict[str, Any]:
    result = cli("verify", str(target), "--torrent", str(torrent), "--json", expect=expect)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def on_disk(content: Path) -> dict[str, int]:
    """(path, size) as ``info`` lists them: relative to the folder, or the file's name."""
    if content.is_file():
        return {content.name: content.stat().st_size}
    return {
        p.relative_to(content).as_posix(): p.stat().st_size
        for p in content.rglob("*")
        if p.is_file()
    }


def piece_of(data: bytes, rel: str, byte: int) -> int:
    """The piece holding byte ``byte`` of the file at ``rel`` (info's convention)."""
    ti = lt.torrent_info(data)
    fs = ti.layout()
    for i in range(fs.num_files()):
        path = fs.file_path(i)
        if path == rel or path.split("/", 1)[-1] == rel:
            return (fs.file_offset(i) + byte) // ti.piece_length()
    raise AssertionError(f"{rel} not in the torrent")


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def assert_describes(doc: dict[str, Any], data: bytes, files: dict[str, int]) -> None:
    """``info --json`` agrees with libtorrent about ``data`` and with the disk."""
    ti = lt.torrent_info(data)
    hashes = ti.info_hashes()
    v1 = str(hashes.v1) if hashes.has_v1() else None
    v2 = str(hashes.v2) if hashes.has_v2() else None
    assert doc["infohash"] == (v1 or v2)
    assert doc["infohash_v2"] == v2
    assert doc["version"] == ("hybrid" if v1 and v2 else "v2" if v2 else "v1")
    assert doc["has_metadata"] is True
    assert doc["name"] == ti.name()
    assert dict(doc["files"]) == files
    assert not any(p.startswith(".pad/") or "/.pad/" in p for p, _ in doc["files"])
    assert doc["size"] == sum(files.values())
    assert doc["piece_size"] == ti.piece_length()
    assert doc["piece_count"] == ti.num_pieces()
    magnet = doc["magnet"]
    assert (f"xt=urn:btih:{v1}" in magnet) == (v1 is not None)
    assert (f"xt=urn:btmh:1220{v2}" in magnet) == (v2 is not None)
    assert f"dn={quote(ti.name(), safe='')}" in magnet
    back = lt.parse_magnet_uri(magnet).info_hashes
    assert str(back.v1 if v1 else back.v2) == doc["infohash"]


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_libtorrent_kinds_info(kind: str, content: Path, tmp_path: Path, cli: CliRun) -> None:
    data = lt_torrent(content, kind)
    torrent = tmp_path / f"{kind}.torrent"
    torrent.write_bytes(data)
    if kind != "v1" and content.is_dir():  # v2 aligns files to pieces with pad files
        fs = lt.torrent_info(data).layout()
        assert any(fs.file_flags(i) & fs.flag_pad_file for i in range(fs.num_files()))
    doc = info_json(cli, str(torrent))
    assert_describes(doc, data, on_disk(content))
    assert doc["single_file"] is content.is_file()
    assert doc["trackers"] == [[ANNOUNCE]]

    lines = cli("info", str(torrent)).stdout.splitlines()
    assert f"infohash   {doc['infohash']}" in lines
    assert f"version    {kind}" in lines
    assert (f"v2 hash    {doc['infohash_v2']}" in lines) == (kind == "hybrid")

    # The magnet reads back as the same torrent, without metadata.
    mag = info_json(cli, doc["magnet"])
    assert mag["has_metadata"] is False
    assert (mag["infohash"], mag["infohash_v2"], mag["version"]) == (
        doc["infohash"],
        doc["infohash_v2"],
        doc["version"],
    )
    assert mag["name"] == doc["name"] and mag["trackers"] == [[ANNOUNCE]]


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_libtorrent_kinds_verify(kind: str, content: Path, tmp_path: Path, cli: CliRun) -> None:
    data = lt_torrent(content, kind)
    torrent = tmp_path / f"{kind}.torrent"
    torrent.write_bytes(data)
    ti = lt.torrent_info(data)

    report = verify_json(cli, content, torrent)
    assert report["ok"] is True, report["problems"]
    assert report["pieces_checked"] == ti.num_pieces()
    assert report["shards_checked"] == 0
    assert len(report["notes"]) == 1 and "pieces" in report["notes"][0]

    # Under another name (a copy kept beside the original, a renamed download).
    other = content.with_name("renamed" + content.suffix)
    content.rename(other)
    before = {p: p.stat().st_mtime_ns for p in [other, *other.rglob("*")]}
    assert verify_json(cli, other, torrent)["ok"] is True
    after = {p: p.stat().st_mtime_ns for p in [other, *other.rglob("*")]}
    assert after == before, "verify wrote to the data"

    rel = DAMAGED if other.is_dir() else content.name
    victim = other / DAMAGED if other.is_dir() else other
    flip_byte(victim, 20_000)
    report = verify_json(cli, other, torrent, expect=1)
    piece = piece_of(data, rel, 20_000)
    assert report["problems"] == [f"{victim}: piece {piece}: piece hash mismatch"]


def test_missing_and_short_files_named(tmp_path: Path, cli: CliRun) -> None:
    content = tmp_path / "data" / "kinds"
    write_files(content, TREE)
    torrent = tmp_path / "h.torrent"
    data = lt_torrent(content, "hybrid")
    torrent.write_bytes(data)
    (content / "alpha.bin").unlink()
    (content / "zero").unlink()
    beta = content / DAMAGED
    with beta.open("r+b") as fh:
        fh.truncate(40_000)
    gamma = content / "sub/deeper/gamma.txt"
    gamma.unlink()
    gamma.mkdir()  # libtorrent cannot open it: the other files are still checked
    problems = verify_json(cli, content, torrent, expect=1)["problems"]
    assert f"{content / 'alpha.bin'}: missing" in problems
    assert f"{content / 'zero'}: missing" in problems
    assert f"{gamma}: not a regular file" in problems
    assert f"{beta}: 40000 bytes, torrent says 70000" in problems
    assert f"{beta}: piece {piece_of(data, DAMAGED, 40_000)}: piece hash mismatch" in problems
    assert f"{beta}: piece {piece_of(data, DAMAGED, 0)}: piece hash mismatch" not in problems
    assert not any(str(content / "alpha.bin") in p and "piece" in p for p in problems)
    assert not (content / "zero").exists(), "the check created a file"


def test_keys_out_of_order(content: Path, tmp_path: Path, cli: CliRun) -> None:
    """The info-hash is of the info dict's bytes as written, not of a re-encoding."""
    files = on_disk(content)
    blob = b"".join((content / rel if content.is_dir() else content).read_bytes() for rel in files)
    pieces = b"".join(
        hashlib.sha1(blob[i : i + PIECE]).digest() for i in range(0, len(blob), PIECE)
    )
    info: dict[str, object] = {"pieces": pieces, "piece length": PIECE, "name": content.name}
    if content.is_dir():
        info["files"] = [{"path": rel.split("/"), "length": size} for rel, size in files.items()]
    else:
        info["length"] = len(blob)
    raw_info = bencode(info)
    data = b"d8:announce" + bencode(ANNOUNCE) + b"4:info" + raw_info + b"e"
    assert (
        hashlib.sha1(lt.bencode(lt.bdecode(raw_info))).digest() != hashlib.sha1(raw_info).digest()
    )
    torrent = tmp_path / "odd.torrent"
    torrent.write_bytes(data)

    doc = info_json(cli, str(torrent))
    assert doc["infohash"] == hashlib.sha1(raw_info).hexdigest()
    assert_describes(doc, data, files)
    assert verify_json(cli, content, torrent)["ok"] is True
    victim = content / DAMAGED if content.is_dir() else content
    flip_byte(victim, 20_000)  # a piece of that file alone
    problems = verify_json(cli, content, torrent, expect=1)["problems"]
    rel = DAMAGED if content.is_dir() else content.name
    assert problems == [f"{victim}: piece {piece_of(data, rel, 20_000)}: piece hash mismatch"]


@pytest.mark.parametrize(
    "case", ["web seed torf calls invalid", "non-ASCII names", "32 MiB pieces"]
)
def test_torrents_torf_refused(case: str, tmp_path: Path, cli: CliRun) -> None:
    web_seeds: tuple[str, ...] = ()
    piece = PIECE
    if case == "non-ASCII names":
        content = tmp_path / "données-中文"
        write_files(content, {"ünï/çødé.bin": 30_000, "ß.txt": 5_000})
        damaged = "ünï/çødé.bin"
    else:
        content = tmp_path / "plain"
        write_files(content, {"a.bin": 30_000, "b.bin": 5_000})
        damaged = "a.bin"
    if case == "web seed torf calls invalid":
        web_seeds = ("http://127.0.0.1:99999/",)  # torf: "Invalid URL"
    if case == "32 MiB pieces":
        piece = 32 << 20
    data = lt_torrent(content, "v1", piece=piece, web_seeds=web_seeds)
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(data)

    doc = info_json(cli, str(torrent))
    assert_describes(doc, data, on_disk(content))
    assert doc["web_seeds"] == list(web_seeds)
    assert all(f"ws={quote(u, safe='')}" in doc["magnet"] for u in web_seeds)
    if case == "32 MiB pieces":
        assert (doc["piece_size"], doc["piece_count"]) == (32 << 20, 1)
    if case == "non-ASCII names":
        assert doc["name"] == "données-中文"
        assert cli("info", str(torrent)).stdout.count("çødé.bin") == 1

    assert verify_json(cli, content, torrent)["ok"] is True
    flip_byte(content / damaged, 10)
    problems = verify_json(cli, content, torrent, expect=1)["problems"]
    blamed = ["a.bin", "b.bin"] if case == "32 MiB pieces" else [damaged]  # one piece holds both
    assert problems == [
        f"{content / rel}: piece {piece_of(data, damaged, 10)}: piece hash mismatch"
        for rel in blamed
    ]


def other_tool_torrent(tool: str, content: Path, out: Path) -> bytes:
    if tool == "mktorrent":
        args = ["mktorrent", "-l", "15", "-a", ANNOUNCE, "-o", str(out), str(content)]
    else:
        args = ["transmission-create", "-s", "16", "-o", str(out), "-t", ANNOUNCE, str(content)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_bytes()


@pytest.mark.parametrize("tool", ["mktorrent", "transmission-create"])
def test_other_tools(tool: str, content: Path, tmp_path: Path, cli: CliRun) -> None:
    torrent = tmp_path / "other.torrent"
    data = other_tool_torrent(tool, content, torrent)
    doc = info_json(cli, str(torrent))
    # transmission-create leaves empty files out of the torrent.
    files = {k: v for k, v in on_disk(content).items() if v or tool == "mktorrent"}
    assert_describes(doc, data, files)
    assert doc["infohash"] == str(lt.torrent_info(data).info_hashes().v1)
    assert doc["single_file"] is content.is_file()
    assert doc["trackers"] == [[ANNOUNCE]]
    assert doc["piece_size"] in (16 << 10, 32 << 10)

    assert verify_json(cli, content, torrent)["ok"] is True
    rel = DAMAGED if content.is_dir() else content.name
    victim = content / DAMAGED if content.is_dir() else content
    flip_byte(victim, 30_000)
    problems = verify_json(cli, content, torrent, expect=1)["problems"]
    assert problems == [f"{victim}: piece {piece_of(data, rel, 30_000)}: piece hash mismatch"]


# ----- magnets and bare info-hashes ---------------------------------------------

V1 = "0123456789abcdef0123456789abcdef01234567"
V2 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def test_bare_v2_infohash(cli: CliRun) -> None:
    doc = info_json(cli, V2.upper())
    assert (doc["infohash"], doc["infohash_v2"], doc["version"]) == (V2, V2, "v2")
    assert doc["magnet"].startswith(f"magnet:?xt=urn:btmh:1220{V2}&tr=")
    assert doc["trackers"] == [list(t) for t in metainfo.DEFAULT_TRACKERS]
    bare = metainfo.parse_source(V2, default_trackers=False)
    assert bare.kind == "infohash" and bare.info.magnet == f"magnet:?xt=urn:btmh:1220{V2}"


@pytest.mark.parametrize(
    ("magnet", "v1", "v2"),
    [
        (f"magnet:?xt=urn:btih:{V1.upper()}&dn=x", V1, None),
        (f"magnet:?xt=urn:btih:{base64.b32encode(bytes.fromhex(V1)).decode()}&dn=x", V1, None),
        (f"magnet:?xt=urn:btmh:1220{V2}&dn=x", None, V2),
        (f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=x", V1, V2),
    ],
)
def test_magnet_forms(magnet: str, v1: str | None, v2: str | None, cli: CliRun) -> None:
    doc = info_json(
        cli, magnet + f"&tr={quote(ANNOUNCE, safe='')}&ws=http%3A%2F%2F127.0.0.1%3A1%2F"
    )
    assert doc["infohash"] == (v1 or v2)
    assert doc["infohash_v2"] == v2
    assert doc["name"] == "x"
    assert doc["trackers"] == [[ANNOUNCE]]
    assert doc["web_seeds"] == ["http://127.0.0.1:1/"]
    assert doc["has_metadata"] is False and doc["files"] == []


@pytest.mark.parametrize(
    "source",
    [
        f"magnet:?xt=urn:btmh:1114{V1}",  # SHA-1 multihash: not a v2 info-hash
        f"magnet:?xt=urn:btmh:1220{V2[:-1]}",
        f"magnet:?xt=urn:btih:{'0' * 40}",  # all zero: no info-hash at all
        "a" * 63,
    ],
)
def test_bad_v2_sources_are_one_line(source: str, console: ConsoleRun) -> None:
    line = assert_one_line_error(console("info", source), source, code=1)
    if source == "a" * 63:
        assert "64 (v2)" in line


def test_huge_magnet_is_not_echoed(console: ConsoleRun) -> None:
    magnet = "magnet:?xt=urn:btih:nothex" + "&tr=http%3A%2F%2Fexample.org%2F" * 300
    line = assert_one_line_error(console("info", magnet), magnet[:60], code=1)
    assert len(line) < 300, line


# ----- verify and seed: which path to give ---------------------------------------


def test_verify_wants_the_file_of_a_single_file_torrent(
    tmp_path: Path, console: ConsoleRun
) -> None:
    write_files(tmp_path / "data", dict([SINGLE]))
    single = tmp_path / "data" / SINGLE[0]
    torrent = tmp_path / "s.torrent"
    torrent.write_bytes(lt_torrent(single, "v1"))
    line = assert_one_line_error(
        console("verify", str(single.parent), "--torrent", str(torrent)), str(single.parent)
    )
    assert "single-file torrent" in line and SINGLE[0] in line
    # A file without --torrent: nothing to check it against.
    assert_one_line_error(console("verify", str(single)), str(single), code=2)

    write_files(tmp_path / "multi", TREE)
    multi = tmp_path / "m.torrent"
    multi.write_bytes(lt_torrent(tmp_path / "multi", "v2"))
    line = assert_one_line_error(
        console("verify", str(single), "--torrent", str(multi)), str(single)
    )
    assert "multi-file torrent" in line


def leech(data: bytes, port: int, dest: Path, timeout: float = 60.0) -> None:
    """Download ``data``'s torrent from 127.0.0.1:``port`` with a bare libtorrent session."""
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "webtorrent_stun_server": "",
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
        }
    )
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(data)
    atp.save_path = str(dest)
    atp.trackers = []
    handle = ses.add_torrent(atp)
    handle.connect_peer(("127.0.0.1", port))
    deadline = time.monotonic() + timeout
    while not handle.status().is_seeding:
        assert time.monotonic() < deadline, f"leecher stuck at {handle.status().progress:.0%}"
        time.sleep(0.1)
    del ses


@pytest.mark.parametrize("case", ["hybrid folder, renamed", "v2 single file"])
def test_seed_kinds(case: str, tmp_path: Path) -> None:
    if case == "v2 single file":
        write_files(tmp_path / "data", dict([SINGLE]))
        content = tmp_path / "data" / SINGLE[0]
        data = lt_torrent(content, "v2")
        served = content
    else:
        write_files(tmp_path / "data" / "kinds", TREE)
        content = tmp_path / "data" / "kinds"
        data = lt_torrent(content, "hybrid")
        served = content.with_name("kinds-copy")  # the folder's name is not the torrent's
        content.rename(served)
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(data)

    seeder = Torrentds(["seed", str(served), str(torrent), "--json", *ISOLATED])
    with running(seeder):
        seeder.wait_event("seeding", 60)
        leech(data, seeder.port, tmp_path / "leech")
    got = tmp_path / "leech" / lt.torrent_info(data).name()
    if served.is_file():
        assert got.read_bytes() == served.read_bytes()
    else:
        assert on_disk(got) == {k: v for k, v in on_disk(served).items() if not k.startswith(".")}
        for rel in TREE:
            assert (got / rel).read_bytes() == (served / rel).read_bytes()


def test_seed_single_file_by_another_name_is_one_line(tmp_path: Path, console: ConsoleRun) -> None:
    write_files(tmp_path / "data", dict([SINGLE]))
    content = tmp_path / "data" / SINGLE[0]
    torrent = tmp_path / "s.torrent"
    torrent.write_bytes(lt_torrent(content, "hybrid"))
    other = content.with_name("other.tar")
    shutil.copyfile(content, other)
    args = ["--seed-hours", "0", *ISOLATED]
    line = assert_one_line_error(console("seed", str(other), str(torrent), *args), str(other))
    assert SINGLE[0] in line
    line = assert_one_line_error(
        console("seed", str(content.parent), str(torrent), *args), str(content.parent)
    )
    assert "single-file torrent" in line


# ----- names and URLs as bytes ---------------------------------------------------


@pytest.mark.parametrize("kind", ["v2", "hybrid"])
def test_unsafe_name_in_v2_file_tree(kind: str, tmp_path: Path, console: ConsoleRun) -> None:
    write_files(tmp_path / "ds", {"ab/x.bin": 1_000, "y.bin": 1_000})
    data = lt_torrent(tmp_path / "ds", kind)
    evil = tmp_path / "evil.torrent"
    # Only the file tree (a v2 torrent) or both lists (a hybrid) name "ab".
    evil.write_bytes(data.replace(b"2:ab", b"2:.."))
    assert evil.read_bytes() != data
    line = assert_one_line_error(console("info", str(evil)), str(evil), code=1)
    assert "unsafe file name '..'" in line


def test_tracker_url_not_utf8(tmp_path: Path, cli: CliRun) -> None:
    """libtorrent loads it (a URL is bytes); its bytes are shown %-escaped."""
    info = {b"name": b"x", b"piece length": PIECE, b"pieces": bytes(20), b"length": 10}
    top: dict[bytes, Any] = {b"info": info}
    top[b"announce-list"] = [[b"http://127.0.0.1:1/\xfe", ANNOUNCE.encode()]]
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(lt.bencode(top))
    doc = info_json(cli, str(torrent))
    assert doc["trackers"] == [["http://127.0.0.1:1/%FE", ANNOUNCE]]
    assert doc["infohash"] == str(lt.torrent_info(torrent.read_bytes()).info_hashes().v1)
