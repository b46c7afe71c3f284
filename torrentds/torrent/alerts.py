"""libtorrent's alerts as plain events keyed by the torrent's swarm id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libtorrent as lt


@dataclass(frozen=True)
class Event:
    infohash: str


@dataclass(frozen=True)
class MetadataReceived(Event):
    pass


@dataclass(frozen=True)
class PieceFinished(Event):
    piece: int


@dataclass(frozen=True)
class HashFailed(Event):
    piece: int


@dataclass(frozen=True)
class TorrentFinished(Event):
    pass


@dataclass(frozen=True)
class FilePrioritiesApplied(Event):
    """libtorrent applied file priorities, resetting every piece priority."""


@dataclass(frozen=True)
class TorrentChecked(Event):
    pass


@dataclass(frozen=True)
class CacheFlushed(Event):
    pass


@dataclass(frozen=True)
class ResumeData(Event):
    data: bytes


@dataclass(frozen=True)
class ResumeFailed(Event):
    message: str


@dataclass(frozen=True)
class TorrentFailed(Event):
    path: str
    message: str


@dataclass(frozen=True)
class PeerBanned(Event):
    peer: str


@dataclass(frozen=True)
class TrackerFailed(Event):
    url: str
    message: str


@dataclass(frozen=True)
class TrackerAnnounced(Event):
    url: str
    peers: int


@dataclass(frozen=True)
class SessionFailed(Event):
    message: str


def translate(a: lt.alert, id_of: Callable[[lt.torrent_handle], str]) -> Event | None:
    if isinstance(a, lt.listen_failed_alert):
        return SessionFailed("", f"cannot listen on {a.address}:{a.port}: {a.message()}")
    if not isinstance(a, lt.torrent_alert):
        return None
    ih = id_of(a.handle)
    if isinstance(a, lt.piece_finished_alert):
        return PieceFinished(ih, int(a.piece_index))
    if isinstance(a, lt.hash_failed_alert):
        return HashFailed(ih, int(a.piece_index))
    if isinstance(a, lt.metadata_received_alert):
        return MetadataReceived(ih)
    if isinstance(a, lt.torrent_finished_alert):
        return TorrentFinished(ih)
    if isinstance(a, lt.torrent_checked_alert):
        return TorrentChecked(ih)
    if isinstance(a, lt.file_prio_alert):
        return FilePrioritiesApplied(ih)
    if isinstance(a, lt.cache_flushed_alert):
        return CacheFlushed(ih)
    if isinstance(a, lt.save_resume_data_alert):
        return ResumeData(ih, bytes(lt.write_resume_data_buf(a.params)))
    if isinstance(a, lt.save_resume_data_failed_alert):
        return ResumeFailed(ih, str(a.error.message()))
    if isinstance(a, lt.file_error_alert):
        return TorrentFailed(ih, str(a.filename()), str(a.error.message()))
    if isinstance(a, lt.torrent_error_alert):
        return TorrentFailed(ih, "", str(a.error.message()))
    if isinstance(a, lt.peer_ban_alert):
        return PeerBanned(ih, f"{a.endpoint[0]}:{a.endpoint[1]}")
    if isinstance(a, lt.tracker_error_alert):
        return TrackerFailed(ih, str(a.tracker_url()), str(a.error.message()))
    if isinstance(a, lt.tracker_reply_alert):
        return TrackerAnnounced(ih, str(a.tracker_url()), int(a.num_peers))
    return None
