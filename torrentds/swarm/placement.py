"""Where a torrent's files land under DIR, checked before anything is written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torrentds.errors import MetainfoError, StorageError, TorrentdsError
from torrentds.statedir import STATE_DIR, TORRENT_COPY, check_inside, write_atomic
from torrentds.torrent import engine as eng
from torrentds.torrent.layout import FileEntry, infohash_of
from torrentds.torrent.ref import TorrentRef
from torrentds.training import handoff


def real_files(ref: TorrentRef) -> list[FileEntry]:
    """The torrent's real files (no pad files), paths relative to ``Place.root``
    (the dataset folder; a single-file torrent's folder), in torrent order."""
    if ref.single_file():
        return ref.file_entries()
    return [dataclasses.replace(f, path=f.path.split("/", 1)[-1]) for f in ref.file_entries()]


def prepare(ref: TorrentRef, spec: eng.AddSpec, layout_checked: bool) -> handoff.Place:
    """The torrent's place under ``spec.save_path``, its state folder created;
    refused in one line if a name is unsafe or something is in the way.
    ``layout_checked``: the caller already refused symlinks under DIR for these
    files (a .torrent known before it was added)."""
    for path, _ in ref.files():
        # libtorrent sanitises names from peers; refuse anything that could
        # still leave the download folder rather than trust that alone.
        parts = path.split("/")
        if path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts):
            raise MetainfoError(path, "unsafe file name in the torrent's metadata")
    single = ref.single_file()
    dataset = spec.save_path / (spec.root_name or ref.name())
    files = real_files(ref)
    # Our state must not collide with the torrent's own files: a single file,
    # or a torrent that ships a .torrentds folder, keeps it outside.
    external = single or any(f.path.split("/")[0] == STATE_DIR for f in files)
    place = handoff.Place.of(dataset, single_file=single, external=external)
    if not layout_checked:
        check_inside(spec.save_path, [f.path for f in ref.file_entries()])
    if single and dataset.is_dir():
        raise StorageError(dataset, "is a folder, but this torrent is a single file of that name")
    if not single and dataset.exists() and not dataset.is_dir():
        raise StorageError(dataset, "is a file, but this torrent is a folder of that name")
    try:
        place.state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or place.state
        raise StorageError(where, f"cannot create: {exc.strerror or exc}") from exc
    return place


def damage(ref: TorrentRef, have: set[int]) -> str | None:
    """Which files hold pieces that failed a seed's check (None: none failed)."""
    pieces, size = ref.num_pieces(), ref.piece_size()
    missing = set(range(pieces)) - have
    if not missing or size <= 0:
        return None
    damaged = [f.path for f in real_files(ref) if not missing.isdisjoint(f.pieces(size))]
    more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    return (
        f"{len(missing)} of {pieces} pieces fail the hash check (in {', '.join(damaged[:3])}{more})"
    )


def keep_torrent_copy(state: Path, ref: TorrentRef) -> None:
    """``dataset.torrent`` in the state folder, replaced when the dataset's
    version (info-hash) changed, so ``verify`` checks against what is here now."""
    copy = state / TORRENT_COPY
    if not copy.is_file() or _infohash_of(copy) != ref.infohash:
        write_atomic(copy, ref.torrent_bytes())


def _infohash_of(path: Path) -> str | None:
    """The info-hash of a .torrent copy (None: unreadable)."""
    try:
        return infohash_of(path.read_bytes())
    except (OSError, TorrentdsError):
        return None
