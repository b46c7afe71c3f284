"""Offline piece check: libtorrent hashes a torrent's data on disk, as a seeder would.

libtorrent, not a second implementation, decides what a piece is: v1, v2 and
hybrid torrents, BEP 47 pad files, single files and info dicts in any key
order all check the way the swarm will check them. The torrent is added to a
private session that talks to no one (loopback listener, no DHT, LSD, UPnP,
NAT-PMP, trackers, web seeds or peers) in upload mode (it never writes), and
stops once the check is done.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from torrentds.errors import StorageError
from torrentds.torrent import metainfo

STALL_SECONDS = 300.0  # no progress for this long: the disk is hung, give up
_POLL_MS = 200


@dataclass(frozen=True)
class Problem:
    """What is wrong with one file: missing, wrong size, or a piece that fails."""

    path: Path
    reason: str
    piece: int | None = None

    def __str__(self) -> str:
        if self.piece is None:
            return f"{self.path}: {self.reason}"
        return f"{self.path}: piece {self.piece}: {self.reason}"


@dataclass(frozen=True)
class _File:
    index: int
    disk: Path
    size: int
    offset: int


def check(
    data: bytes,
    target: Path,
    source: str,
    advance: Callable[[int], None] | None = None,
    stall_seconds: float = STALL_SECONDS,
) -> list[Problem]:
    """Check ``target`` against the .torrent ``data``; returns what fails.

    ``target`` is the torrent's folder for a multi-file torrent, the file
    itself for a single-file one; its name may differ from the torrent's.
    ``advance`` is told the bytes checked so far, as they grow.
    """
    atp = metainfo.load_torrent(data, source)
    ti = atp.ti
    assert ti is not None  # load_torrent refuses a torrent without metadata
    target = Path(os.path.abspath(target))
    files, renamed = _layout(ti, target, source)

    problems: list[Problem] = []
    unreadable: set[int] = set()
    for f in files:
        size = _probe(f.disk)
        if isinstance(size, str):
            problems.append(Problem(f.disk, size))
            unreadable.add(f.index)
        elif size != f.size:
            problems.append(Problem(f.disk, f"{size} bytes, torrent says {f.size}"))

    # libtorrent creates a torrent's empty files when it checks, and stops the
    # whole check at a file it cannot open: point both kinds into a scratch
    # folder, so a check writes nothing and still checks every other file.
    with tempfile.TemporaryDirectory(prefix="torrentds-check-") as scratch:
        for f in files:
            if f.size == 0 or f.index in unreadable:
                renamed[f.index] = str(Path(scratch) / str(f.index))
        total = sum(f.size for f in files)
        pieces = _hash_check(atp, target.parent, renamed, total, advance, stall_seconds)
    piece_size = ti.piece_length()
    for f in files:
        if f.index in unreadable or f.size <= 0:
            continue  # a missing file is one line, not one per piece
        first = f.offset // piece_size
        last = (f.offset + f.size - 1) // piece_size
        problems += [
            Problem(f.disk, "piece hash mismatch", p)
            for p in range(first, last + 1)
            if p < len(pieces) and not pieces[p]
        ]
    return problems


def _probe(path: Path) -> int | str:
    """The size of a file libtorrent can read, or why it cannot."""
    try:
        if not path.exists():
            return "missing"
        if not path.is_file():
            return "not a regular file"
        with path.open("rb") as fh:
            return os.fstat(fh.fileno()).st_size
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"


def _layout(ti: lt.torrent_info, target: Path, source: str) -> tuple[list[_File], dict[int, str]]:
    """The torrent's real files where they are on disk, and libtorrent's renames
    that put them there when ``target``'s name is not the torrent's."""
    fs = ti.layout()
    name = ti.name()
    real = [
        i for i in range(fs.num_files()) if not fs.file_flags(i) & lt.file_storage.flag_pad_file
    ]
    single = len(real) == 1 and fs.file_path(real[0]) == name
    if not target.exists():
        raise StorageError(target, "no such file or folder")
    if single and target.is_dir():
        raise StorageError(
            target, f"a folder, but {source} is a single-file torrent: give the file ({name})"
        )
    if not single and not target.is_dir():
        raise StorageError(
            target, f"not a folder, but {source} is a multi-file torrent: give its folder"
        )
    renamed: dict[int, str] = {}
    out: list[_File] = []
    for i in real:
        rel = fs.file_path(i)
        if target.name != name:
            rel = target.name if single else f"{target.name}/{rel.split('/', 1)[-1]}"
            renamed[i] = rel
        out.append(_File(i, target.parent / rel, fs.file_size(i), fs.file_offset(i)))
    return out, renamed


def _settings() -> dict[str, int | bool | str]:
    return {
        # Talks to no one: the check needs no network at all.
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "webtorrent_stun_server": "",
        "alert_mask": int(
            lt.alert_category.error | lt.alert_category.status | lt.alert_category.storage
        ),
        "hashing_threads": os.cpu_count() or 1,
    }


def _hash_check(
    atp: lt.add_torrent_params,
    save_path: Path,
    renamed: dict[int, str],
    total: int,
    advance: Callable[[int], None] | None,
    stall_seconds: float,
) -> list[bool]:
    """libtorrent's verdict on every piece (True: the piece on disk is good)."""
    atp.save_path = str(save_path)
    atp.renamed_files = renamed
    atp.trackers = []
    atp.url_seeds = []
    atp.dht_nodes = []
    atp.peers = []
    flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    atp.flags = flags | lt.torrent_flags.stop_when_ready | lt.torrent_flags.upload_mode
    # No default plugins (ut_metadata, ut_pex, smart_ban): there are no peers.
    ses = lt.session(_settings(), 0)  # type: ignore[call-overload]
    try:
        handle = ses.add_torrent(atp)
        done = 0
        last_change = time.monotonic()
        checked = False
        while not checked:
            ses.wait_for_alert(_POLL_MS)
            for a in ses.pop_alerts():
                if isinstance(a, lt.torrent_checked_alert):
                    checked = True
                elif isinstance(a, lt.file_error_alert):
                    path = a.filename() or str(save_path)
                    raise StorageError(path, f"cannot check pieces: {a.error.message()}")
                elif isinstance(a, lt.torrent_error_alert):
                    raise StorageError(save_path, f"cannot check pieces: {a.error.message()}")
            now = int(handle.status(0).progress * total) if not checked else total
            if now > done:
                if advance is not None:
                    advance(now - done)
                done = now
                last_change = time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                raise StorageError(
                    save_path, f"piece check made no progress for {stall_seconds:.0f} s"
                )
        status = handle.status(lt.status_flags_t.query_pieces)
        return [bool(p) for p in status.pieces]
    finally:
        del ses  # the session stops here, before the caller looks at the files
