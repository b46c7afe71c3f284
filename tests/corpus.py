"""A corpus of real-world torrents, made by the real tools, for ``tests/test_corpus.py``.

Each entry is small generated data plus a .torrent of one kind: single-file ``.bin``
and ``.tar`` (mktorrent, transmission-create, libtorrent v1), multi-file (mktorrent,
transmission-create), hybrid v1+v2 with BEP 47 pad files and v2-only (libtorrent's
``create_torrent``), a torrentds dataset, a hand-made torrent whose info dict is not in
sorted key order (a re-encoding tool gets another info-hash), an empty file last, non-ASCII
names, and very many pieces. Every torrent is loaded back with ``lt.torrent_info`` and its
info-hashes are taken from there, so an entry states what libtorrent (and so qBittorrent)
calls it.

Entries are built lazily (``Corpus[entry_id]``), each in its own folder, so selecting a
few tests builds only what they use. Torrents name no tracker, or only ``announce`` (a
``http://127.0.0.1:PORT/announce``) when one is given. ``python -m tests.corpus DIR``
builds the whole corpus into DIR and prints a line per entry.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import libtorrent as lt

Kind = Literal["v1", "hybrid", "v2"]
ClientName = Literal["aria2c", "transmission", "qbittorrent"]
# The venv's console script (.venv/bin/torrentds), beside the interpreter running the tests.
TORRENTDS = Path(sys.executable).with_name("torrentds")
KIB = 1 << 10
MIB = 1 << 20
TOOL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Entry:
    """One torrent of the corpus and the data it describes, as libtorrent reads it."""

    id: str
    tool: str  # what made the .torrent
    kind: Kind
    data: Path  # the torrent's content: the file (single-file) or the folder NAME
    torrent: Path
    v1: str | None  # hex info-hashes from lt.torrent_info(bytes).info_hashes()
    v2: str | None
    single_file: bool
    # Real files in torrent order (pad files left out): path relative to ``data``
    # (a single-file torrent: its name) and size.
    files: tuple[tuple[str, int], ...]
    sha256: tuple[tuple[str, str], ...]  # (relative path, sha256 of the original bytes)
    piece_size: int
    pieces: int
    pad_files: int  # BEP 47 pad files in the v1 file list

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def parent(self) -> Path:
        """The folder that holds ``data`` (a client's download folder when seeding it)."""
        return self.data.parent

    @property
    def infohash(self) -> str:
        """The hash torrentds should report: v1 when there is one, else v2."""
        ih = self.v1 or self.v2
        assert ih is not None
        return ih

    @property
    def torrent_id(self) -> str:
        """qBittorrent's torrent id: libtorrent's best hash (v2 when there is one), 40 hex."""
        best = self.v2 or self.v1
        assert best is not None
        return best[:40]

    def path_of(self, rel: str, root: Path | None = None) -> Path:
        """Where the file ``rel`` lives under ``root`` (a copy of ``data``; default ``data``)."""
        root = root or self.data
        return root if self.single_file else root / rel

    def magnet(self, *, btih: bool = True, btmh: bool = True) -> str:
        """A magnet with the chosen exact topics (only those the torrent has) and its name."""
        xts = []
        if btih and self.v1:
            xts.append(f"xt=urn:btih:{self.v1}")
        if btmh and self.v2:
            xts.append(f"xt=urn:btmh:1220{self.v2}")
        assert xts, f"{self.id}: no exact topic left for this magnet"
        return "magnet:?" + "&".join(xts) + f"&dn={self.name}"


@dataclass(frozen=True)
class Spec:
    """A corpus entry to build, and which real client seeds / leeches it in the tests."""

    id: str
    build: Callable[[Path, str | None], Entry]  # (entry folder, announce URL or None)
    seeder: ClientName
    leecher: ClientName
    slow: bool = False


# --------------------------------------------------------------------------- data


def _rng(entry_id: str) -> random.Random:
    """Each entry's bytes differ from every other's, and are the same on every run."""
    return random.Random(hashlib.sha256(entry_id.encode()).digest())


def write_random(path: Path, size: int, rng: random.Random, chunk: int = 16 * MIB) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(chunk, left)
            fh.write(rng.randbytes(n))
            left -= n


def write_tar(path: Path, rng: random.Random, members: int = 12) -> None:
    """A real tar (WebDataset-like sample pairs) of a size that is not piece-aligned."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(members):
            for ext, size in (("bin", rng.randrange(20_000, 150_000)), ("json", 40)):
                info = tarfile.TarInfo(f"sample{i:04d}.{ext}")
                info.size = size
                tar.addfile(info, io.BytesIO(rng.randbytes(size)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue() + rng.randbytes(777))  # trailing bytes: odd size


def write_tree(root: Path, files: list[tuple[str, int]], rng: random.Random) -> None:
    for rel, size in files:
        write_random(root / rel, size, rng)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def flip_byte(path: Path, offset: int | None = None) -> int:
    """Invert one byte of ``path`` (default: the middle one); returns its offset."""
    size = path.stat().st_size
    assert size > 0, f"{path}: nothing to flip"
    at = size // 2 if offset is None else offset
    with path.open("r+b") as fh:
        fh.seek(at)
        old = fh.read(1)
        fh.seek(at)
        fh.write(bytes([old[0] ^ 0xFF]))
    return at


def copy_data(entry: Entry, dest_parent: Path) -> Path:
    """A copy of the entry's data as ``dest_parent/NAME``; returns it."""
    dest_parent.mkdir(parents=True, exist_ok=True)
    dest = dest_parent / entry.name
    if entry.single_file:
        shutil.copy2(entry.data, dest)
    else:
        shutil.copytree(entry.data, dest)
    return dest


def same_bytes(entry: Entry, root: Path) -> list[str]:
    """Files of ``entry`` whose copy under ``root`` (DIR/NAME) is missing or differs."""
    bad = []
    for rel, digest in entry.sha256:
        path = entry.path_of(rel, root)
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(rel)
    return bad


# --------------------------------------------------------------------------- bencode


def bencode(value: Any) -> bytes:
    """Bencode ``value``; a dict's keys are written in the dict's own order, not sorted."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        out = b"d"
        for k, v in value.items():
            out += bencode(k) + bencode(v)
        return out + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def canonical(value: Any) -> Any:
    """``value`` with every dict's keys sorted (what a re-encoding tool writes)."""
    if isinstance(value, dict):
        items = ((k.encode() if isinstance(k, str) else k, canonical(v)) for k, v in value.items())
        return dict(sorted(items))
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def piece_hashes(paths: list[Path], piece_size: int) -> bytes:
    """SHA-1 of each piece of the files' concatenated bytes (BitTorrent v1)."""
    out = bytearray()
    buf = bytearray()
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(MIB):
                buf += chunk
                while len(buf) >= piece_size:
                    out += hashlib.sha1(bytes(buf[:piece_size])).digest()
                    del buf[:piece_size]
    if buf:
        out += hashlib.sha1(bytes(buf)).digest()
    return bytes(out)


# --------------------------------------------------------------------------- reading back


def _is_single_file(info: dict[bytes, Any], name: bytes) -> bool:
    if b"files" in info or (b"length" in info):
        return b"length" in info
    tree = info[b"file tree"]
    return list(tree) == [name] and b"" in tree[name]


def load_entry(entry_id: str, tool: str, data: Path, torrent: Path) -> Entry:
    """Read ``torrent`` back with libtorrent and check ``data`` matches its file list."""
    raw = torrent.read_bytes()
    try:
        ti = lt.torrent_info(raw)
    except RuntimeError as exc:
        raise AssertionError(f"{entry_id}: libtorrent cannot load {torrent}: {exc}") from exc
    ih = ti.info_hashes()
    v1 = str(ih.v1) if ih.has_v1() else None
    v2 = str(ih.v2) if ih.has_v2() else None
    kind: Kind = "hybrid" if v1 and v2 else ("v1" if v1 else "v2")
    meta: dict[bytes, Any] = lt.bdecode(raw)  # type: ignore[assignment]
    info: dict[bytes, Any] = meta[b"info"]
    single = _is_single_file(info, info[b"name"])
    assert ti.name() == data.name, f"{entry_id}: torrent name {ti.name()!r} != {data.name!r}"
    fs = ti.layout()
    files: list[tuple[str, int]] = []
    pads = 0
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            pads += 1
            continue
        rel = data.name if single else fs.file_path(i).split("/", 1)[1]
        files.append((rel, fs.file_size(i)))
    if single:
        assert len(files) == 1 and data.is_file(), f"{entry_id}: single-file but {files}"
    digests = []
    for rel, size in files:
        path = data if single else data / rel
        assert path.is_file(), f"{entry_id}: {path} missing"
        assert path.stat().st_size == size, f"{entry_id}: {path} is not {size} bytes"
        digests.append((rel, sha256_file(path)))
    return Entry(
        id=entry_id,
        tool=tool,
        kind=kind,
        data=data,
        torrent=torrent,
        v1=v1,
        v2=v2,
        single_file=single,
        files=tuple(files),
        sha256=tuple(digests),
        piece_size=ti.piece_length(),
        pieces=ti.num_pieces(),
        pad_files=pads,
    )


# --------------------------------------------------------------------------- the tools


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(args[0]) or args[0]
    if not Path(exe).exists():
        raise AssertionError(f"{args[0]} not installed (make deb installs the test tools)")
    done = subprocess.run(
        [exe, *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done


def mktorrent(data: Path, torrent: Path, piece_size: int, announce: str | None) -> None:
    log2 = piece_size.bit_length() - 1
    assert 1 << log2 == piece_size
    args = ["mktorrent", "-d", "-t", "2", "-l", str(log2), "-o", str(torrent)]
    if announce:
        args += ["-a", announce]
    _run([*args, str(data)])


def transmission_create(data: Path, torrent: Path, piece_size: int, announce: str | None) -> None:
    args = ["transmission-create", "-s", str(piece_size // KIB), "-o", str(torrent)]
    if announce:
        args += ["-t", announce]
    _run([*args, str(data)])


def libtorrent_create(
    data: Path, torrent: Path, piece_size: int, announce: str | None, flags: int
) -> None:
    """``lt.create_torrent`` of ``data``: flags 0 = hybrid, ``v1_only``, ``v2_only``."""
    ct = lt.create_torrent(lt.list_files(str(data)), piece_size, flags)
    ct.set_creation_date(0)
    ct.set_creator("libtorrent " + lt.__version__)
    if announce:
        ct.add_tracker(announce)
    lt.set_piece_hashes(ct, str(data.parent))
    torrent.write_bytes(lt.bencode(ct.generate()))


# --------------------------------------------------------------------------- builders

SINGLE_BIN = 1_300_007
PIECE = 32 * KIB


def _dirs(base: Path) -> tuple[Path, Path]:
    """(the folder that receives NAME, the .torrent path) of an entry folder."""
    data_parent = base / "data"
    data_parent.mkdir(parents=True, exist_ok=True)
    return data_parent, base / f"{base.name}.torrent"


def _single(
    entry_id: str, tool: str, suffix: str, make: Callable[[Path, Path, int, str | None], None]
) -> Callable[[Path, str | None], Entry]:
    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / f"{entry_id}{suffix}"
        rng = _rng(entry_id)
        if suffix == ".tar":
            write_tar(data, rng)
        else:
            write_random(data, SINGLE_BIN, rng)
        make(data, torrent, PIECE, announce)
        entry = load_entry(entry_id, tool, data, torrent)
        assert entry.single_file, f"{entry_id}: {tool} did not make a single-file torrent"
        return entry

    return build


def _v1_only(data: Path, torrent: Path, piece: int, announce: str | None) -> None:
    libtorrent_create(data, torrent, piece, announce, lt.create_torrent.v1_only)


MULTI_FILES = [
    ("README.txt", 1_234),
    ("images/img-0000.bin", 200_003),
    ("images/img-0001.bin", 150_001),
    ("images/nested/deep/img-0002.bin", 333_333),
    ("labels/labels.bin", 65_536),  # exactly two pieces, then more files
    ("z-last.bin", 99_999),
]


def _multi(
    entry_id: str, tool: str, make: Callable[[Path, Path, int, str | None], None]
) -> Callable[[Path, str | None], Entry]:
    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / entry_id
        write_tree(data, MULTI_FILES, _rng(entry_id))
        make(data, torrent, PIECE, announce)
        entry = load_entry(entry_id, tool, data, torrent)
        assert not entry.single_file and len(entry.files) == len(MULTI_FILES), entry.files
        return entry

    return build


# No file beside a folder of the same stem (train.json next to train/): libtorrent 2.1.1
# writes a hybrid torrent of that layout that it cannot load itself.
V2_FILES = [
    ("meta.json", 777),
    ("shards/shard-000000.bin", 100_000),
    ("shards/shard-000001.bin", 65_536),
    ("shards/shard-000002.bin", 1),
    ("shards/shard-000003.bin", 250_001),
    ("val/val-000000.bin", 70_000),
]


def _v2(entry_id: str, flags: int) -> Callable[[Path, str | None], Entry]:
    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / entry_id
        write_tree(data, V2_FILES, _rng(entry_id))
        libtorrent_create(data, torrent, PIECE, announce, flags)
        entry = load_entry(entry_id, "libtorrent", data, torrent)
        want: Kind = "v2" if flags & lt.create_torrent.v2_only else "hybrid"
        assert entry.kind == want, f"{entry_id}: {entry.kind} != {want}"
        assert entry.pad_files > 0, f"{entry_id}: no BEP 47 pad files"
        return entry

    return build


def _torrentds_dataset(entry_id: str) -> Callable[[Path, str | None], Entry]:
    """``torrentds create`` of a generic folder, its shards written straight to data/NAME."""

    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        name = entry_id
        src = base / "src" / name
        rng = _rng(entry_id)
        write_tree(
            src, [(f"sample-{i:03d}.bin", rng.randrange(5_000, 60_000)) for i in range(30)], rng
        )
        args = [str(TORRENTDS), "create", str(src), "--no-default-trackers"]
        args += ["--tracker", announce] if announce else []
        args += ["--shard-size", "256K", "--piece-size", "32K", "--no-check-web-seeds"]
        args += ["--shards-dir", str(parent / name), "--name", name, "-o", str(torrent)]
        _run(args)
        return load_entry(entry_id, "torrentds", parent / name, torrent)

    return build


HANDMADE_FILES = [("part-1.bin", 300_001), ("dir/part-2.bin", 200_003), ("part-3.bin", 5)]


def _handmade(entry_id: str) -> Callable[[Path, str | None], Entry]:
    """Bencode written by hand: the info dict's keys (and each file's) in an unsorted order,
    plus an extra key a client does not know. libtorrent hashes the bytes as they are; a
    tool that decodes and re-encodes the dict gets another info-hash."""

    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / entry_id
        write_tree(data, HANDMADE_FILES, _rng(entry_id))
        info: dict[str, Any] = {
            "x-corpus": {"tool": "hand-made", "keys": 1},  # unknown to clients, valid
            "pieces": piece_hashes([data / rel for rel, _ in HANDMADE_FILES], PIECE),
            "piece length": PIECE,
            "name": entry_id,
            "files": [
                {"path": rel.split("/"), "length": size}  # "path" before "length"
                for rel, size in HANDMADE_FILES
            ],
        }
        meta: dict[str, Any] = {"info": info, "created by": "hand (tests/corpus.py)"}
        if announce:
            meta = {"info": info, "announce": announce, "created by": "hand (tests/corpus.py)"}
        raw_info = bencode(info)
        torrent.write_bytes(bencode(meta))
        entry = load_entry(entry_id, "hand-made", data, torrent)
        assert entry.v1 == hashlib.sha1(raw_info).hexdigest(), "libtorrent re-encoded the info"
        assert hashlib.sha1(bencode(canonical(info))).hexdigest() != entry.v1
        return entry

    return build


def _empty_last(entry_id: str) -> Callable[[Path, str | None], Entry]:
    """mktorrent keeps zero-length files (transmission-create drops them) in sorted order."""

    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / entry_id
        write_tree(data, [("a.bin", 120_000), ("b/c.bin", 45_678)], _rng(entry_id))
        (data / "zz-empty").write_bytes(b"")
        mktorrent(data, torrent, PIECE, announce)
        entry = load_entry(entry_id, "mktorrent", data, torrent)
        assert entry.files[-1] == ("zz-empty", 0), entry.files
        return entry

    return build


NON_ASCII_NAME = "données-ñ-日本"
NON_ASCII_FILES = [
    ("résumé é.bin", 100_001),
    ("日本語/データ-1.bin", 80_000),
    ("Ελληνικά/αρχείο.txt", 3_333),
    ("emoji-🦀.bin", 40_000),
]


def _non_ascii(entry_id: str) -> Callable[[Path, str | None], Entry]:
    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / NON_ASCII_NAME
        write_tree(data, NON_ASCII_FILES, _rng(entry_id))
        mktorrent(data, torrent, PIECE, announce)
        entry = load_entry(entry_id, "mktorrent", data, torrent)
        assert sorted(rel for rel, _ in entry.files) == sorted(r for r, _ in NON_ASCII_FILES)
        return entry

    return build


def _many_pieces(entry_id: str, total: int) -> Callable[[Path, str | None], Entry]:
    """16 KiB pieces (the smallest v2 allows, and libtorrent's block size) over ``total``."""

    def build(base: Path, announce: str | None) -> Entry:
        parent, torrent = _dirs(base)
        data = parent / entry_id
        quarter = total // 4
        write_tree(data, [(f"part-{i}.bin", quarter + i) for i in range(4)], _rng(entry_id))
        transmission_create(data, torrent, 16 * KIB, announce)  # mktorrent: 32 KiB at least
        entry = load_entry(entry_id, "transmission-create", data, torrent)
        assert entry.pieces >= total // (16 * KIB), entry.pieces
        return entry

    return build


SPECS: tuple[Spec, ...] = (
    Spec(
        "mktorrent-single-bin",
        _single("mktorrent-single-bin", "mktorrent", ".bin", mktorrent),
        "aria2c",
        "aria2c",
    ),
    Spec(
        "mktorrent-single-tar",
        _single("mktorrent-single-tar", "mktorrent", ".tar", mktorrent),
        "aria2c",
        "qbittorrent",
    ),
    Spec(
        "transmission-single-bin",
        _single("transmission-single-bin", "transmission-create", ".bin", transmission_create),
        "transmission",
        "transmission",
    ),
    Spec(
        "transmission-single-tar",
        _single("transmission-single-tar", "transmission-create", ".tar", transmission_create),
        "aria2c",
        "aria2c",
    ),
    Spec(
        "libtorrent-v1-single-bin",
        _single("libtorrent-v1-single-bin", "libtorrent", ".bin", _v1_only),
        "qbittorrent",
        "aria2c",
    ),
    Spec(
        "libtorrent-v1-single-tar",
        _single("libtorrent-v1-single-tar", "libtorrent", ".tar", _v1_only),
        "aria2c",
        "aria2c",
    ),
    Spec("mktorrent-multi", _multi("mktorrent-multi", "mktorrent", mktorrent), "aria2c", "aria2c"),
    Spec(
        "transmission-multi",
        _multi("transmission-multi", "transmission-create", transmission_create),
        "transmission",
        "qbittorrent",
    ),
    Spec("libtorrent-hybrid", _v2("libtorrent-hybrid", 0), "qbittorrent", "qbittorrent"),
    Spec(
        "libtorrent-v2",
        _v2("libtorrent-v2", lt.create_torrent.v2_only),
        "qbittorrent",
        "qbittorrent",
    ),
    Spec("torrentds-dataset", _torrentds_dataset("torrentds-dataset"), "aria2c", "transmission"),
    Spec("handmade-unsorted", _handmade("handmade-unsorted"), "qbittorrent", "qbittorrent"),
    Spec("empty-last", _empty_last("empty-last"), "aria2c", "qbittorrent"),
    Spec("non-ascii", _non_ascii("non-ascii"), "aria2c", "qbittorrent"),
    Spec("many-pieces", _many_pieces("many-pieces", 64 * MIB), "aria2c", "aria2c"),
    Spec(
        "many-pieces-1g", _many_pieces("many-pieces-1g", 1024 * MIB), "aria2c", "aria2c", slow=True
    ),
)
SPEC_BY_ID = {s.id: s for s in SPECS}


class Corpus:
    """Entries built on first use under ``root`` (one folder each), then cached."""

    def __init__(self, root: Path, announce: str | None = None) -> None:
        self.root = root
        self.announce = announce
        self._built: dict[str, Entry] = {}

    def __getitem__(self, entry_id: str) -> Entry:
        if entry_id not in self._built:
            spec = SPEC_BY_ID[entry_id]
            base = self.root / entry_id
            if base.exists():
                shutil.rmtree(base)  # a build that failed half-way
            base.mkdir(parents=True)
            self._built[entry_id] = spec.build(base, self.announce)
        return self._built[entry_id]

    def __iter__(self) -> Iterator[Entry]:
        return (self[s.id] for s in SPECS if not s.slow)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.corpus DIR", file=sys.stderr)
        return 2
    root = Path(argv[0]).absolute()
    for entry in Corpus(root):
        hashes = " ".join(h for h in (entry.v1, entry.v2) if h)
        layout = "single" if entry.single_file else f"{len(entry.files)} files"
        print(f"{entry.id:26} {entry.kind:6} {layout:9} {entry.pieces:5} pieces  {hashes}")
        print(f"{'':26} {os.path.relpath(entry.torrent, root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
