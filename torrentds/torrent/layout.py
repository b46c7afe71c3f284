"""A torrent's files as libtorrent lays them out, and the id the swarm knows it by."""

from __future__ import annotations

from dataclasses import dataclass

import libtorrent as lt

from torrentds.errors import MetainfoError


def swarm_id(handle: lt.torrent_handle) -> str:
    """The swarm's id for a torrent: its v1 hash (40 hex) when it has one, else
    its v2 hash (64 hex). ``info_hash()`` is neither: for a v2 torrent it is the
    v2 hash cut to 20 bytes, and it changes when a hybrid's metadata arrives."""
    return best_id(handle.info_hashes())


def best_id(hashes: lt.info_hash_t) -> str:
    return str(hashes.v1) if hashes.has_v1() else str(hashes.v2)


@dataclass(frozen=True)
class FileEntry:
    """One file of a torrent as libtorrent lays it out (BEP 47 pad files left out)."""

    index: int  # libtorrent's file index (counts pad files)
    path: str  # relative to the save folder: NAME/... (multi-file) or NAME (single)
    size: int
    offset: int  # in the torrent's byte stream; decides which pieces it spans

    def pieces(self, piece_size: int) -> range:
        """The pieces holding this file's bytes (none for an empty file)."""
        if self.size <= 0 or piece_size <= 0:
            return range(0)
        return range(self.offset // piece_size, (self.offset + self.size - 1) // piece_size + 1)


def layout_of(ti: lt.torrent_info) -> list[FileEntry]:
    fs = ti.layout()
    pad = lt.file_storage.flag_pad_file
    return [
        FileEntry(i, fs.file_path(i), fs.file_size(i), fs.file_offset(i))
        for i in range(fs.num_files())
        if not fs.file_flags(i) & pad
    ]


def infohash_of(data: bytes) -> str:
    """The swarm's id (see ``swarm_id``) of .torrent bytes."""
    try:
        hashes = lt.torrent_info(data).info_hashes()
    except RuntimeError as exc:
        raise MetainfoError("torrent", f"libtorrent refused it: {exc}") from exc
    return best_id(hashes)


def torrent_layout(data: bytes) -> list[FileEntry]:
    """The real files of .torrent bytes (for priorities chosen before the add)."""
    try:
        return layout_of(lt.torrent_info(data))
    except RuntimeError as exc:
        raise MetainfoError("torrent", f"libtorrent refused it: {exc}") from exc
