"""``create``: the .torrent, the manifest, adoption, piece hashing and bad input.

The .torrent is read back by two independent clients (libtorrent and
transmission-show), piece hashes are recomputed by libtorrent and torf, and
``sha256sum -c`` checks SHA256SUMS; bad input is run through the real console
script to see its exit code and its single stderr line.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
import torf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import (
    PIECE,
    TRACKER,
    WEB_SEED,
    CliRun,
    ConsoleRun,
    CreateRun,
    assert_one_line_error,
    base_create_args,
    make_shard,
    sha256_of,
    shard_members,
    snapshot,
    write_images,
)
from torrentds.dataset import hashing

TOOL_TIMEOUT = 60.0


# --- reading the .torrent with libtorrent and transmission-show -------------------------


@dataclass
class Shown:
    """What one client says a .torrent holds."""

    infohash: str
    files: list[str]
    trackers: list[list[str]]
    web_seeds: list[str]
    private: bool
    piece_count: int
    sizes: dict[str, int] = field(default_factory=dict)


def libtorrent_show(torrent: Path) -> Shown:
    ti = lt.torrent_info(str(torrent))
    params = lt.load_torrent_file(str(torrent))
    tiers: dict[int, list[str]] = {}
    for url, tier in zip(params.trackers, params.tracker_tiers, strict=True):
        tiers.setdefault(tier, []).append(url)
    fs = ti.layout()
    files = [fs.file_path(i) for i in range(fs.num_files())]
    return Shown(
        infohash=str(ti.info_hashes().v1),
        files=files,
        trackers=[tiers[k] for k in sorted(tiers)],
        web_seeds=list(params.url_seeds),
        private=ti.priv(),
        piece_count=ti.num_pieces(),
        sizes={fs.file_path(i): fs.file_size(i) for i in range(fs.num_files())},
    )


def transmission_show(torrent: Path) -> Shown:
    exe = shutil.which("transmission-show")
    if exe is None:
        pytest.fail("transmission-show not installed (apt-get install transmission-cli)")
    proc = subprocess.run(
        [exe, str(torrent)], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=True
    )
    sections: dict[str, list[str]] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if re.fullmatch(r"[A-Z]+", line):
            current = line
            sections[current] = []
        elif current and line.strip():
            sections[current].append(line.strip())
    general = dict(line.split(": ", 1) for line in sections["GENERAL"])
    tiers: list[list[str]] = []
    for line in sections.get("TRACKERS", []):
        if line.startswith("Tier #"):
            tiers.append([])
        else:
            tiers[-1].append(line)
    files = [line.rsplit(" (", 1)[0] for line in sections["FILES"]]
    return Shown(
        infohash=general["Hash"],
        files=files,
        trackers=tiers,
        web_seeds=sections.get("WEBSEEDS", []),
        private=general["Privacy"].startswith("Private"),
        piece_count=int(general["Piece Count"]),
    )


@pytest.mark.parametrize("private", [False, True])
def test_torrent_agrees_in_libtorrent_and_transmission(
    tiny_imagenet: Path, create: CreateRun, private: bool
) -> None:
    extra = [
        "--web-seed",
        WEB_SEED,
        "--tracker",
        "http://127.0.0.1:6970/announce",
        "--comment",
        "tiny test set",
    ]
    made = create(tiny_imagenet, *extra, *(["--private"] if private else []))
    lib = libtorrent_show(made.torrent)
    tr = transmission_show(made.torrent)

    assert lib.infohash == tr.infohash == made.infohash
    assert re.fullmatch(r"[0-9a-f]{40}", made.infohash)
    name = tiny_imagenet.name
    shards = [f"{name}/{s['path']}" for s in made.manifest["shards"]]
    # Shards first, in manifest order, then the two files torrentds writes.
    assert lib.files == [*shards, f"{name}/SHA256SUMS", f"{name}/torrentds.json"]
    assert sorted(tr.files) == sorted(lib.files)  # transmission-show lists them sorted
    for path, size in lib.sizes.items():
        assert (made.dataset_dir / path.split("/", 1)[1]).stat().st_size == size
    assert lib.trackers == tr.trackers == [[TRACKER], ["http://127.0.0.1:6970/announce"]]
    assert lib.web_seeds == tr.web_seeds == [WEB_SEED]
    assert lib.private is tr.private is private
    assert lib.piece_count == tr.piece_count == made.result["pieces"]
    assert lt.torrent_info(str(made.torrent)).comment() == "tiny test set"
    # The copy kept in the dataset folder is the same torrent.
    assert (
        made.dataset_dir / ".torrentds" / "dataset.torrent"
    ).read_bytes() == made.torrent.read_bytes()


def test_sha256sum_checks_the_dataset(tiny_imagenet: Path, create: CreateRun) -> None:
    made = create(tiny_imagenet)
    exe = shutil.which("sha256sum")
    assert exe is not None, "coreutils sha256sum missing"
    proc = subprocess.run(
        [exe, "-c", "SHA256SUMS"],
        cwd=made.dataset_dir,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok_lines = [line for line in proc.stdout.splitlines() if line.endswith(": OK")]
    assert sorted(line.removesuffix(": OK") for line in ok_lines) == sorted(
        s["path"] for s in made.manifest["shards"]
    )

    # ... and it is a real check: one changed byte makes it fail.
    shard = made.dataset_dir / made.manifest["shards"][0]["path"]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = subprocess.run(
        [exe, "-c", "SHA256SUMS"],
        cwd=made.dataset_dir,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 1
    assert f"{made.manifest['shards'][0]['path']}: FAILED" in proc.stdout


def _check_piece_ranges(torrent: Path, manifest: dict[str, Any]) -> list[int]:
    """Manifest piece ranges against libtorrent's file offsets; returns the shard offsets."""
    ti = lt.torrent_info(str(torrent))
    fs = ti.layout()
    piece = ti.piece_length()
    assert piece == manifest["piece_size"]
    shards = manifest["shards"]
    assert fs.num_files() == len(shards) + 2
    offsets = []
    for i, entry in enumerate(shards):
        assert fs.file_path(i).split("/", 1)[1] == entry["path"]
        offset, size = fs.file_offset(i), fs.file_size(i)
        assert size == entry["bytes"]
        assert entry["first_piece"] == offset // piece == ti.map_file(i, 0, 1).piece
        assert (
            entry["last_piece"] == (offset + size - 1) // piece == ti.map_file(i, size - 1, 1).piece
        )
        offsets.append(offset)
    # SHA256SUMS then torrentds.json come right after the last shard.
    assert [fs.file_path(i).split("/", 1)[1] for i in (len(shards), len(shards) + 1)] == [
        "SHA256SUMS",
        "torrentds.json",
    ]
    end = shards[-1]
    assert fs.file_offset(len(shards)) == offsets[-1] + end["bytes"]
    return offsets


def test_manifest_piece_ranges_packed(tiny_imagenet: Path, create: CreateRun) -> None:
    made = create(tiny_imagenet, "--shard-size", "20K")
    offsets = _check_piece_ranges(made.torrent, made.manifest)
    assert len(offsets) >= 4
    shards = made.manifest["shards"]
    # Packed shards own whole pieces: each starts where the previous one ended.
    for before, after in itertools.pairwise(shards):
        assert after["first_piece"] == before["last_piece"] + 1


def test_manifest_piece_ranges_adopted(adopted_tree: Path, create: CreateRun) -> None:
    made = create(adopted_tree)
    offsets = _check_piece_ranges(made.torrent, made.manifest)
    assert any(o % PIECE for o in offsets), "want shards that start mid-piece"


# --- adopting existing shards -------------------------------------------------------------


def test_adopt_split_folders_is_idempotent(
    adopted_tree: Path, create: CreateRun, cli: CliRun, tmp_path: Path
) -> None:
    before = {
        p.relative_to(adopted_tree).as_posix(): sha256_of(p) for p in adopted_tree.rglob("*.tar")
    }
    made = create(adopted_tree)
    assert made.dataset_dir == adopted_tree  # adopted in place, not repacked
    assert made.result["layout"] == "adopted"
    after = {
        p.relative_to(adopted_tree).as_posix(): sha256_of(p) for p in adopted_tree.rglob("*.tar")
    }
    assert after == before, "adopted shards must stay byte-identical"

    doc = made.manifest
    assert [(s["path"], s["split"], s["samples"], s["sha256"]) for s in doc["shards"]] == [
        ("train/train-000000.tar", "train", 5, before["train/train-000000.tar"]),
        ("train/train-000001.tar", "train", 3, before["train/train-000001.tar"]),
        ("val/val-000000.tar", "val", 2, before["val/val-000000.tar"]),
    ]
    assert doc["splits"]["train"]["samples"] == 8
    assert [s["bytes"] for s in doc["shards"]] == [
        (adopted_tree / s["path"]).stat().st_size for s in doc["shards"]
    ]

    # Again, on the folder that now also holds torrentds.json, SHA256SUMS, .torrentds/.
    manifest_before = (adopted_tree / "torrentds.json").read_bytes()
    result = cli(*base_create_args(adopted_tree, tmp_path / "again.torrent"), "--json")
    again = json.loads(result.stdout)
    assert result.stderr == ""  # its own files are not "not a .tar shard" warnings
    assert again["infohash"] == made.infohash
    assert (tmp_path / "again.torrent").read_bytes() == made.torrent.read_bytes()
    assert (adopted_tree / "torrentds.json").read_bytes() == manifest_before
    assert again["shards"] == 3
    files = libtorrent_show(made.torrent).files
    assert [f.split("/", 1)[1] for f in files] == [
        "train/train-000000.tar",
        "train/train-000001.tar",
        "val/val-000000.tar",
        "SHA256SUMS",
        "torrentds.json",
    ]


def test_adopt_top_level_shards_split_by_name(tmp_path: Path, cli: CliRun) -> None:
    root = tmp_path / "flat"
    rng = random.Random(8)
    names = ["train-000000.tar", "train-000001.tar", "val-000000.tar", "shard.tar"]
    for i, name in enumerate(names):
        make_shard(root / name, shard_members(rng, f"s{i}_", 2 + i), trailing=i * 101)
    (root / "README.md").write_text("about\n")
    before = snapshot(root)
    torrent = tmp_path / "flat.torrent"
    result = cli(*base_create_args(root, torrent), "--json")
    doc = json.loads((root / "torrentds.json").read_text())
    assert {s["path"]: s["split"] for s in doc["shards"]} == {
        "shard.tar": "train",
        "train-000000.tar": "train",
        "train-000001.tar": "train",
        "val-000000.tar": "val",
    }
    assert {s["path"]: s["samples"] for s in doc["shards"]}["val-000000.tar"] == 4
    assert json.loads(result.stdout)["splits"]["train"]["shards"] == 3
    # README.md is left out of the torrent, with a warning naming it.
    assert f"{root / 'README.md'}: not a .tar shard" in result.stderr
    assert "flat/README.md" not in libtorrent_show(torrent).files
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {
        "SHA256SUMS",
        "torrentds.json",
        ".torrentds",
        ".torrentds/dataset.torrent",
    }


# --- piece hashes ---------------------------------------------------------------------------


def _libtorrent_pieces(files: list[tuple[str, int]], piece: int, parent: Path) -> bytes:
    """Piece hashes libtorrent computes for ``files`` (paths under ``parent``), in order."""
    entries = [lt.create_file_entry(path, size) for path, size in files]
    ct = lt.create_torrent(entries, piece, lt.create_torrent.v1_only)
    assert ct.files().num_files() == len(files), "libtorrent added pad files"
    lt.set_piece_hashes(ct, str(parent))
    ti = lt.torrent_info(ct.generate())
    return b"".join(ti.hash_for_piece(i) for i in range(ti.num_pieces()))


@pytest.mark.parametrize("kind", ["packed", "adopted"])
def test_piece_hashes_match_libtorrent_and_torf(
    kind: str, tiny_imagenet: Path, adopted_tree: Path, create: CreateRun
) -> None:
    made = create(tiny_imagenet if kind == "packed" else adopted_tree)
    ti = lt.torrent_info(str(made.torrent))
    ours = b"".join(ti.hash_for_piece(i) for i in range(ti.num_pieces()))
    fs = ti.layout()
    folder = made.dataset_dir
    files = [
        (f"{folder.name}/{fs.file_path(i).split('/', 1)[1]}", fs.file_size(i))
        for i in range(fs.num_files())
    ]
    assert _libtorrent_pieces(files, ti.piece_length(), folder.parent) == ours
    assert torf.Torrent.read(str(made.torrent)).verify(str(folder)) is True


def _naive_pieces(blobs: list[bytes], piece: int) -> bytes:
    stream = b"".join(blobs)
    return b"".join(
        hashlib.sha1(stream[i : i + piece]).digest() for i in range(0, len(stream), piece)
    )


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    sizes=st.lists(
        st.integers(min_value=0, max_value=3 * PIECE + 5), min_size=1, max_size=6
    ).filter(lambda s: sum(s) > 0),
    seed=st.integers(min_value=0, max_value=1000),
    n_known=st.integers(min_value=0, max_value=6),
)
def test_hash_layout_matches_a_plain_concatenation(
    sizes: list[int], seed: int, n_known: int
) -> None:
    rng = random.Random(seed)
    blobs = [rng.randbytes(n) for n in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, blob in enumerate(blobs):
            path = Path(tmp) / f"f{i}"
            path.write_bytes(blob)
            paths.append((path, len(blob)))
        # Digests computed ahead (as adopt does) for a prefix of the files.
        known = dict(enumerate(hashing.hash_files(paths[:n_known], PIECE)))
        sha256s, pieces = hashing.hash_layout(paths, PIECE, known=known)
        assert sha256s == [hashlib.sha256(b).hexdigest() for b in blobs]
        assert pieces == _naive_pieces(blobs, PIECE)
        # libtorrent agrees on the same files in the same order.
        files = [(f"t/f{i}", n) for i, n in enumerate(sizes)]
        Path(tmp, "t").mkdir()
        for i, (path, _) in enumerate(paths):
            path.rename(Path(tmp, "t", f"f{i}"))
        assert _libtorrent_pieces(files, PIECE, Path(tmp)) == pieces


def test_hash_layout_uses_no_stale_known_digest(tmp_path: Path) -> None:
    """A digest computed at another offset (another head) is not reused."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(bytes(range(256)) * 200)
    aligned = hashing.hash_files([(b, 51200)], PIECE)[0]  # b hashed as if at offset 0
    _, pieces = hashing.hash_layout([(a, 1000), (b, 51200)], PIECE, known={1: aligned})
    assert pieces == _naive_pieces([a.read_bytes(), b.read_bytes()], PIECE)


# --- bad input: one line on stderr, non-zero exit, nothing left behind ------------------------


def _valid_images(root: Path) -> None:
    write_images(root / "train" / "cat", ["a.png", "b.png"], random.Random(0))
    write_images(root / "train" / "dog", ["c.png"], random.Random(1))


def _case_missing(tmp: Path) -> tuple[Path, str]:
    return tmp / "nope", str(tmp / "nope")


def _case_empty(tmp: Path) -> tuple[Path, str]:
    (tmp / "empty" / ".hidden-only").mkdir(parents=True)
    (tmp / "empty" / ".DS_Store").write_bytes(b"x")
    return tmp / "empty", str(tmp / "empty")


def _case_not_utf8(tmp: Path) -> tuple[Path, str]:
    _valid_images(tmp / "names")
    with open(os.fsencode(tmp / "names" / "train" / "cat") + b"/bad\xff.png", "wb") as fh:
        fh.write(b"x")
    return tmp / "names", str(tmp / "names" / "train" / "cat" / "bad\ufffd.png")


def _case_symlink_out(tmp: Path) -> tuple[Path, str]:
    (tmp / "files").mkdir()
    (tmp / "files" / "a.txt").write_text("a")
    (tmp / "secret.txt").write_text("outside")
    (tmp / "files" / "b.txt").symlink_to(tmp / "secret.txt")
    return tmp / "files", str(tmp / "files" / "b.txt")


def _case_bad_tar(tmp: Path) -> tuple[Path, str]:
    make_shard(tmp / "shards" / "train-000000.tar", shard_members(random.Random(0), "a", 2))
    (tmp / "shards" / "train-000001.tar").write_bytes(random.Random(1).randbytes(3000))
    return tmp / "shards", str(tmp / "shards" / "train-000001.tar")


def _case_empty_tar(tmp: Path) -> tuple[Path, str]:
    make_shard(tmp / "shards" / "train" / "train-000000.tar", [("a.txt", b"a")])
    (tmp / "shards" / "train" / "train-000001.tar").write_bytes(b"")
    return tmp / "shards", str(tmp / "shards" / "train" / "train-000001.tar")


def _case_file_not_folder(tmp: Path) -> tuple[Path, str]:
    (tmp / "data.png").write_bytes(b"x")
    return tmp / "data.png", str(tmp / "data.png")


def _case_no_classes(tmp: Path) -> tuple[Path, str]:
    write_images(tmp / "flat" / "train", ["a.png", "b.png"], random.Random(0))
    return tmp / "flat", str(tmp / "flat" / "train")


BAD_INPUTS: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "missing folder": _case_missing,
    "empty folder": _case_empty,
    "name not UTF-8": _case_not_utf8,
    "symlink outside": _case_symlink_out,
    "adopted .tar not a tar": _case_bad_tar,
    "adopted .tar empty": _case_empty_tar,
    "a file, not a folder": _case_file_not_folder,
    "image folder without classes": _case_no_classes,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_nothing(
    case: str, tmp_path: Path, console: ConsoleRun
) -> None:
    data_dir, subject = BAD_INPUTS[case](tmp_path)
    before = snapshot(tmp_path)
    proc = console(*base_create_args(data_dir, tmp_path / "out.torrent"))
    assert_one_line_error(proc, subject, code=1)
    assert snapshot(tmp_path) == before, "create left files behind"


PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def _drop_file_read_override() -> None:
    """In the child: drop root's power to read any file (bounding set, applied at exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file(tmp_path: Path, console: ConsoleRun) -> None:
    _valid_images(tmp_path / "locked")
    secret = tmp_path / "locked" / "train" / "dog" / "d.png"
    write_images(secret.parent, [secret.name], random.Random(2))
    secret.chmod(0)
    preexec: Callable[[], None] | None = None
    if os.geteuid() == 0:
        # Root reads mode-000 files through CAP_DAC_OVERRIDE; the console script is run
        # without it (still uid 0, so the venv stays readable) and a probe checks that
        # the file really is unreadable for it.
        preexec = _drop_file_read_override
        try:
            probe = subprocess.run(
                ["cat", str(secret)],
                preexec_fn=preexec,
                capture_output=True,
                timeout=TOOL_TIMEOUT,
                check=False,
            )
        except subprocess.SubprocessError as exc:
            pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here: {exc}")
        if probe.returncode == 0:
            pytest.skip(
                "running as root and a mode-000 file stays readable without CAP_DAC_OVERRIDE here"
            )
    before = snapshot(tmp_path)
    proc = console(
        *base_create_args(tmp_path / "locked", tmp_path / "out.torrent"), preexec_fn=preexec
    )
    line = assert_one_line_error(proc, str(secret), code=1)
    assert "not readable" in line
    assert snapshot(tmp_path) == before


def test_existing_torrent_needs_force(tmp_path: Path, console: ConsoleRun) -> None:
    _valid_images(tmp_path / "pets")
    torrent = tmp_path / "pets.torrent"
    torrent.write_bytes(b"old torrent")
    before = snapshot(tmp_path)
    proc = console(*base_create_args(tmp_path / "pets", torrent))
    line = assert_one_line_error(proc, str(torrent), code=1)
    assert "--force" in line
    assert snapshot(tmp_path) == before

    proc = console(*base_create_args(tmp_path / "pets", torrent), "--force")
    assert proc.returncode == 0, proc.stderr
    assert lt.torrent_info(str(torrent)).name() == "pets"


def test_existing_shards_dir_needs_force(tmp_path: Path, console: ConsoleRun) -> None:
    _valid_images(tmp_path / "pets")
    shards = tmp_path / "pets-wds"
    shards.mkdir()
    (shards / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    proc = console(*base_create_args(tmp_path / "pets", tmp_path / "pets.torrent"))
    assert_one_line_error(proc, str(shards), code=1)
    assert snapshot(tmp_path) == before

    # --force replaces it, through a staging folder that does not stay behind.
    proc = console(*base_create_args(tmp_path / "pets", tmp_path / "pets.torrent"), "--force")
    assert proc.returncode == 0, proc.stderr
    assert not (shards / "keep.txt").exists()
    assert (shards / "torrentds.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets", "pets-wds", "pets.torrent"]


@pytest.mark.parametrize("where", ["parent", "same", "inside"])
def test_shards_dir_overlapping_the_data_is_refused(
    where: str, tmp_path: Path, console: ConsoleRun
) -> None:
    data_dir = tmp_path / "outer" / "pets"
    _valid_images(data_dir)
    shards = {"parent": data_dir.parent, "same": data_dir, "inside": data_dir / "wds"}[where]
    before = snapshot(tmp_path)
    # Even with --force: replacing a folder that holds the dataset would delete it.
    proc = console(
        *base_create_args(data_dir, tmp_path / "pets.torrent"),
        "--shards-dir",
        str(shards),
        "--force",
    )
    assert_one_line_error(proc, str(shards), code=2)
    assert snapshot(tmp_path) == before


def test_success_leaves_no_staging_folders(
    tiny_imagenet: Path, create: CreateRun, tmp_path: Path
) -> None:
    made = create(tiny_imagenet)
    assert made.dataset_dir == tmp_path / "tiny-imagenet-200-wds"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in made.dataset_dir.iterdir()) == [
        ".torrentds",
        "SHA256SUMS",
        "test",
        "torrentds.json",
        "train",
        "val",
    ]


@pytest.mark.parametrize("what", ["torrent", "shards-dir", "torrent of adopted shards"])
def test_output_under_a_regular_file(what: str, tmp_path: Path, console: ConsoleRun) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    if what == "torrent of adopted shards":
        data_dir = tmp_path / "shards"
        make_shard(data_dir / "train-000000.tar", shard_members(random.Random(0), "a", 2))
    else:
        data_dir = tmp_path / "pets"
        _valid_images(data_dir)
    torrent = blocker / "out.torrent" if what != "shards-dir" else tmp_path / "out.torrent"
    extra = ["--shards-dir", str(blocker / "wds")] if what == "shards-dir" else []
    before = snapshot(tmp_path)
    proc = console(*base_create_args(data_dir, torrent), *extra)
    assert_one_line_error(proc, str(blocker), code=1)
    assert snapshot(tmp_path) == before, "create left files behind"
