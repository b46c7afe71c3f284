"""One torrent in the session: thin calls on its libtorrent handle, plain results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libtorrent as lt

from torrentds.errors import MetainfoError
from torrentds.torrent.addresses import peer_address
from torrentds.torrent.layout import FileEntry, layout_of, swarm_id
from torrentds.torrent.peerid import PeerSeen


@dataclass(frozen=True)
class TorrentStatus:
    state: str
    progress: float
    total_wanted: int
    total_done: int
    downloaded: int  # payload bytes this session
    uploaded: int
    download_rate: int
    upload_rate: int
    peers: int
    seeds: int
    is_seeding: bool
    has_metadata: bool
    web_seed_bytes: int = 0
    errored: str = ""
    pieces: list[bool] = field(default_factory=list, repr=False)


_STATES = {
    int(lt.torrent_status.states.checking_files): "checking",
    int(lt.torrent_status.states.downloading_metadata): "metadata",
    int(lt.torrent_status.states.downloading): "downloading",
    int(lt.torrent_status.states.finished): "finished",
    int(lt.torrent_status.states.seeding): "seeding",
    int(lt.torrent_status.states.checking_resume_data): "checking",
}


class TorrentRef:
    """One torrent in the session; methods are thin calls on its handle."""

    def __init__(self, handle: lt.torrent_handle) -> None:
        self._h = handle
        # Fixed at add: events keep reaching the job when a hybrid magnet's
        # metadata reveals its second hash.
        self.infohash = swarm_id(handle)
        self._files: list[FileEntry] | None = None

    # -- metadata ---------------------------------------------------------
    def has_metadata(self) -> bool:
        return bool(self._h.status(0).has_metadata)

    def name(self) -> str:
        ti = self._h.torrent_file()
        return str(ti.name()) if ti is not None else ""

    def files(self) -> list[tuple[str, int]]:
        """(path relative to the save folder, size) in torrent order, no pad files."""
        return [(f.path, f.size) for f in self.file_entries()]

    def file_entries(self) -> list[FileEntry]:
        """The torrent's real files with their libtorrent index and offset."""
        if self._files is None:
            ti = self._h.torrent_file()
            if ti is None:
                return []
            self._files = layout_of(ti)
        return self._files

    def single_file(self) -> bool:
        """A torrent of one file at the top (DIR/NAME is that file, not a folder)."""
        entries = self.file_entries()
        return len(entries) == 1 and "/" not in entries[0].path

    def hashes(self) -> tuple[str | None, str | None]:
        """(v1, v2) info-hashes as hex; None for the kind the torrent lacks."""
        h = self._h.info_hashes()
        return (str(h.v1) if h.has_v1() else None, str(h.v2) if h.has_v2() else None)

    def piece_size(self) -> int:
        ti = self._h.torrent_file()
        return int(ti.piece_length()) if ti is not None else 0

    def num_pieces(self) -> int:
        ti = self._h.torrent_file()
        return int(ti.num_pieces()) if ti is not None else 0

    def torrent_bytes(self) -> bytes:
        """A .torrent (info dict and trackers) for this torrent's metadata."""
        ti = self._h.torrent_file()
        if ti is None:
            raise MetainfoError(self.infohash, "metadata not received yet")
        trackers = [str(t["url"]) for t in self._h.trackers()]
        entry: dict[str, Any] = {"info": lt.bdecode(ti.info_section())}
        if trackers:
            entry["announce"] = trackers[0]
            entry["announce-list"] = [[t] for t in trackers]
        seeds = list(self._h.url_seeds())
        if seeds:
            entry["url-list"] = seeds
        return bytes(lt.bencode(entry))

    # -- control ----------------------------------------------------------
    def have_piece(self, piece: int) -> bool:
        return bool(self._h.have_piece(piece))

    def prioritize_files(self, priorities: list[int]) -> None:
        """One priority per real file (``files()`` order); pad files get none."""
        ti = self._h.torrent_file()
        count = ti.num_files() if ti is not None else len(priorities)
        full = [0] * count
        for entry, prio in zip(self.file_entries(), priorities, strict=True):
            full[entry.index] = prio
        self._h.prioritize_files(full)

    def piece_priorities(self) -> list[int]:
        return [int(p) for p in self._h.get_piece_priorities()]

    def prioritize_pieces(self, priorities: list[int]) -> None:
        """One priority per piece (replaces what the file priorities set)."""
        self._h.prioritize_pieces(priorities)

    def set_deadlines(self, pieces: list[int], start: int = 0, step_ms: int = 20) -> None:
        """Mark pieces time-critical, in this order (libtorrent asks for them first).

        Callers keep the list short: each call costs libtorrent a sorted insert."""
        for i, piece in enumerate(pieces, start):
            self._h.set_piece_deadline(piece, i * step_ms)

    def connect_peer(self, host_port: str) -> None:
        self._h.connect_peer(peer_address(host_port))

    def add_web_seed(self, url: str) -> None:
        self._h.add_url_seed(url)

    def web_seeds(self) -> list[str]:
        """The web seeds in use now (libtorrent drops one it has banned)."""
        return [str(url) for url in self._h.url_seeds()]

    def unchecked_pieces(self) -> list[int]:
        """Partial pieces whose every block is on disk, waiting for their hash check."""
        return [
            int(d["piece_index"])
            for d in self._h.get_download_queue()
            if d["blocks"] and all(int(b["state"]) == FINISHED_BLOCK for b in d["blocks"])
        ]

    def readd_web_seed(self, url: str) -> None:
        """Put back a web seed libtorrent dropped (a plain add of it is ignored)."""
        self._h.remove_url_seed(url)
        self._h.add_url_seed(url)

    def add_piece(self, piece: int, data: bytes) -> None:
        """Hand libtorrent a piece's bytes as a peer's blocks would arrive: it
        checks, writes and reports them (``PieceFinished`` or ``HashFailed``)."""
        self._h.add_piece(piece, data, 0)

    def flush(self) -> None:
        """Ask libtorrent to write out its cache; a ``CacheFlushed`` follows."""
        self._h.flush_cache()

    def save_resume(self) -> None:
        """Ask for resume data; a ``ResumeData`` event follows."""
        self._h.save_resume_data(
            lt.torrent_handle.save_info_dict | lt.torrent_handle.flush_disk_cache
        )

    def force_recheck(self) -> None:
        self._h.force_recheck()

    def status(self, with_pieces: bool = False) -> TorrentStatus:
        flags = lt.status_flags_t.query_pieces if with_pieces else 0
        s = self._h.status(flags)
        return TorrentStatus(
            state=_STATES.get(int(s.state), str(s.state)),
            progress=float(s.progress),
            total_wanted=int(s.total_wanted),
            total_done=int(s.total_wanted_done),
            downloaded=int(s.total_payload_download),
            uploaded=int(s.total_payload_upload),
            download_rate=int(s.download_payload_rate),
            upload_rate=int(s.upload_payload_rate),
            peers=int(s.num_peers),
            seeds=int(s.num_seeds),
            is_seeding=bool(s.is_seeding),
            has_metadata=bool(s.has_metadata),
            errored=str(s.errc.message()) if s.errc.value() else "",
            pieces=[bool(p) for p in s.pieces] if with_pieces else [],
        )

    def web_seed_totals(self) -> dict[str, int]:
        """Bytes received so far on each open web seed connection, by URL."""
        out: dict[str, int] = {}
        web = (lt.peer_info.web_seed, lt.peer_info.http_seed)
        for p in self._h.get_peer_info():
            if p.connection_type in web:
                key = f"{p.ip[0]}:{p.ip[1]}"
                out[key] = out.get(key, 0) + int(p.total_download)
        return out

    def peers(self) -> list[PeerSeen]:
        """The BitTorrent peers past their handshake (not web seeds), by peer id."""
        out = []
        pending = lt.peer_info.handshake | lt.peer_info.connecting
        for p in self._h.get_peer_info():
            if p.connection_type == lt.peer_info.standard_bittorrent and not p.flags & pending:
                out.append(PeerSeen(bytes(p.pid.to_bytes()), bool(p.flags & lt.peer_info.seed)))
        return out

    def clear_deadlines(self) -> None:
        self._h.clear_piece_deadlines()

    def pause(self) -> None:
        self._h.pause()

    def resume(self) -> None:
        self._h.resume()


FINISHED_BLOCK = 3  # libtorrent's block_info state: written to disk
