"""The libtorrent session: its settings, torrents added to it, alerts as plain events.

Only the ``torrent`` folder imports libtorrent (``metainfo`` reads torrents
with it, ``piececheck`` checks pieces offline). Everything above sees
dataclasses (``SessionOptions``, ``TorrentStatus``, the ``Event`` types) and
``TorrentRef`` handles; libtorrent's types and errors do not leak out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libtorrent as lt

from torrentds.errors import DuplicateTorrentError, MetainfoError, TorrentdsError
from torrentds.options import DEFAULT_LISTEN, SessionOptions
from torrentds.torrent.addresses import (
    _address,
    listen_interface,
)

ENGINE_VERSION = lt.__version__


def lan_settings() -> dict[str, int | bool | str]:
    """Throughput settings for LAN swarms (see README, "Engine settings")."""
    return {
        # Several sidecars may share one IP (containers behind one node address).
        "allow_multiple_connections_per_ip": True,
        # uTP's delay-based congestion control throttles LAN transfers hard.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Everyone unchoked: in a closed swarm there is no one to punish.
        "choking_algorithm": 0,  # fixed_slots_choker
        "unchoke_slots_limit": -1,
        "seed_choking_algorithm": 1,  # fastest_upload
        "send_buffer_watermark": 4 << 20,
        "send_buffer_low_watermark": 1 << 20,
        "send_buffer_watermark_factor": 150,
        # A fast peer would otherwise be asked for runs of up to 8 MiB of
        # neighbouring pieces, whatever their priority: that defeats the window
        # and slices, and sends peers to the origin for the same pieces.
        "whole_pieces_threshold": 0,
        # The first few pieces would otherwise be picked at random, whatever
        # their priority.
        "initial_picker_threshold": 0,
        # A web seed is asked for max(1 MiB, piece, this) of neighbouring pieces at
        # once; 16 MiB (the default) spans many slices (see order.Slice).
        "urlseed_max_request_bytes": 1 << 20,
        "max_out_request_queue": 500,
        "request_queue_time": 1,
        "max_queued_disk_bytes": 16 << 20,
        "aio_threads": 4,
        "hashing_threads": 2,
        "connections_limit": 400,
        # While only the manifest is wanted the torrent counts as "finished" and
        # libtorrent would drop its seeds, then wait ~60 s to dial them again.
        "close_redundant_connections": False,
        "mixed_mode_algorithm": 0,  # prefer_tcp
    }


def _session_settings(opts: SessionOptions) -> dict[str, int | bool | str]:
    mask = (
        lt.alert_category.error
        | lt.alert_category.status
        | lt.alert_category.storage
        | lt.alert_category.tracker
        | lt.alert_category.peer
        | lt.alert_category.piece_progress
        | lt.alert_category.file_progress
    )
    settings: dict[str, int | bool | str] = {
        "listen_interfaces": opts.listen or DEFAULT_LISTEN,
        "alert_mask": int(mask),
        "alert_queue_size": 100_000,
        "enable_dht": opts.dht,
        "dht_bootstrap_nodes": ",".join(opts.dht_bootstrap) if opts.dht else "",
        "enable_lsd": opts.lsd,
        "enable_upnp": opts.upnp,
        "enable_natpmp": opts.upnp,
        # libtorrent 2.1 asks a public STUN server for WebTorrent; never.
        "webtorrent_stun_server": "",
        "max_webtorrent_offers": 0,
        "upload_rate_limit": opts.max_upload,
        "download_rate_limit": opts.max_download,
        "user_agent": "torrentds/libtorrent " + ENGINE_VERSION,
        "stop_tracker_timeout": 2,
        "announce_to_all_tiers": False,
        "auto_manage_startup": 0,
    }
    settings.update(lan_settings())
    if opts.utp:
        settings["enable_outgoing_utp"] = settings["enable_incoming_utp"] = True
    return settings


# ----- events -----------------------------------------------------------


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


def _hash_of(handle: lt.torrent_handle) -> str:
    """The swarm's id for a torrent: its v1 hash (40 hex) when it has one, else
    its v2 hash (64 hex). ``info_hash()`` is neither: for a v2 torrent it is the
    v2 hash cut to 20 bytes, and it changes when a hybrid's metadata arrives."""
    return _best_id(handle.info_hashes())


def _best_id(hashes: lt.info_hash_t) -> str:
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


class TorrentRef:
    """One torrent in the session; methods are thin calls on its handle."""

    def __init__(self, handle: lt.torrent_handle) -> None:
        self._h = handle
        # Fixed at add: events keep reaching the job when a hybrid magnet's
        # metadata reveals its second hash.
        self.infohash = _hash_of(handle)
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
        self._h.connect_peer(_address(host_port))

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

    def pause(self) -> None:
        self._h.pause()

    def resume(self) -> None:
        self._h.resume()


FINISHED_BLOCK = 3  # libtorrent's block_info state: written to disk


def layout_of(ti: lt.torrent_info) -> list[FileEntry]:
    fs = ti.layout()
    pad = lt.file_storage.flag_pad_file
    return [
        FileEntry(i, fs.file_path(i), fs.file_size(i), fs.file_offset(i))
        for i in range(fs.num_files())
        if not fs.file_flags(i) & pad
    ]


def infohash_of(data: bytes) -> str:
    """The swarm's id (see ``_hash_of``) of .torrent bytes."""
    try:
        hashes = lt.torrent_info(data).info_hashes()
    except RuntimeError as exc:
        raise MetainfoError("torrent", f"libtorrent refused it: {exc}") from exc
    return _best_id(hashes)


def torrent_layout(data: bytes) -> list[FileEntry]:
    """The real files of .torrent bytes (for priorities chosen before the add)."""
    try:
        return layout_of(lt.torrent_info(data))
    except RuntimeError as exc:
        raise MetainfoError("torrent", f"libtorrent refused it: {exc}") from exc


@dataclass(frozen=True)
class AddSpec:
    """What to add: exactly one of ``torrent`` (bytes) or ``magnet``."""

    save_path: Path
    torrent: bytes | None = None
    magnet: str | None = None
    resume: bytes | None = None
    seed_mode: bool = False
    trackers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    root_name: str | None = None  # store NAME/... under this folder name instead
    # Every file starts at priority 0 (also for a magnet's metadata, when it
    # arrives), so nothing is requested before the caller chose an order.
    hold_files: bool = False
    # Priorities from the start (a pause-and-set would announce "paused" and
    # then sit idle; setting them after the add races the first announce).
    file_priorities: tuple[int, ...] | None = None
    # Forget the partly downloaded pieces the resume data lists (a restart
    # after a stall: one of them may be the piece libtorrent stopped on).
    drop_partial: bool = False


class Engine:
    """A libtorrent session configured by ``SessionOptions``."""

    def __init__(self, opts: SessionOptions) -> None:
        asked = opts.listen or DEFAULT_LISTEN
        interface, port = listen_interface(asked)
        settings = _session_settings(replace(opts, listen=interface))
        if opts.listen is None:
            port = 0  # the default: any port will do if 6881 is taken
        elif port:
            # Otherwise libtorrent tries the next 10 ports, then any port, and
            # says nothing: peers told the asked port would find no one there.
            settings["max_retry_port_bind"] = 0
            settings["listen_system_port_fallback"] = False
        try:
            # No default plugins: smart_ban blamed (and banned) a good peer for a
            # web seed's wrong block when both had been asked for the same block,
            # which stalls a swarm whose other sources are gone. Bans by piece
            # hash failures (libtorrent's own, per peer) stay.
            self._ses = lt.session(settings, 0)  # type: ignore[call-overload]
            self._ses.add_extension("ut_metadata")  # magnets: metadata from peers
            self._ses.add_extension("ut_pex")
        except RuntimeError as exc:
            raise TorrentdsError(asked, f"cannot start BitTorrent session: {exc}") from exc
        self._check_listening(asked, port)
        if opts.max_upload or opts.max_download:
            self._limit_local_peers()
        self._refs: dict[str, TorrentRef] = {}
        self._by_handle: dict[lt.torrent_handle, TorrentRef] = {}

    def _limit_local_peers(self) -> None:
        # libtorrent puts LAN and loopback peers in its unlimited "local" peer
        # class; map every address to the global class so the limits bind.
        f = lt.ip_filter()
        global_class = 1 << lt.session.global_peer_class_id
        f.add_rule("0.0.0.0", "255.255.255.255", global_class)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", global_class)
        self._ses.set_peer_class_filter(f)

    def listen_port(self) -> int:
        """The port peers can reach this session on (the first listen socket's)."""
        return int(self._ses.listen_port())

    def _check_listening(self, asked: str, port: int) -> None:
        """Fail unless the session listens where asked (any port, for port 0).

        ``listen_port`` waits for the session's thread, which has opened its
        sockets by then, so their alerts are already queued.
        """
        actual = self.listen_port()
        failed = [a for a in self._ses.pop_alerts() if isinstance(a, lt.listen_failed_alert)]
        if actual and (port == 0 or (actual == port and not failed)):
            return
        if failed:
            a = failed[0]
            where = f"[{a.address}]" if ":" in str(a.address) else str(a.address)
            reason = f"cannot listen on {where}:{a.port}: {a.error.message()}"
        elif actual:
            reason = f"libtorrent listens on port {actual}, not {port}"
        else:
            reason = "libtorrent listens on no address"
        raise TorrentdsError(asked, reason)

    def add(self, spec: AddSpec) -> TorrentRef:
        try:
            if spec.resume is not None:
                atp = lt.read_resume_data(spec.resume)
            elif spec.torrent is not None:
                atp = lt.add_torrent_params()
                atp.ti = lt.torrent_info(spec.torrent)
            elif spec.magnet is not None:
                atp = lt.parse_magnet_uri(spec.magnet)
            else:
                raise MetainfoError("add", "nothing to add")
        except RuntimeError as exc:
            raise MetainfoError(spec.magnet or "torrent", f"libtorrent refused it: {exc}") from exc
        atp.save_path = str(spec.save_path)
        if spec.drop_partial:
            atp.unfinished_pieces = {}
        # Resume data keeps banned IPs; on loopback or behind NAT one ban would
        # shut out every peer at that address for good.
        atp.banned_peers = []
        # WebTorrent (ws/wss trackers) would need the STUN server we turned off.
        atp.trackers = [t for t in atp.trackers if not t.startswith(("ws://", "wss://"))]
        if spec.root_name and atp.ti is not None and atp.ti.name() != spec.root_name:
            fs = atp.ti.layout()
            single = fs.num_files() == 1 and "/" not in fs.file_path(0)
            atp.renamed_files = {
                i: spec.root_name
                if single
                else f"{spec.root_name}/{fs.file_path(i).split('/', 1)[-1]}"
                for i in range(fs.num_files())
            }
        flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        if spec.seed_mode:
            flags |= lt.torrent_flags.seed_mode
        if spec.hold_files:
            flags |= lt.torrent_flags.default_dont_download

        atp.flags = flags
        if spec.file_priorities is not None and atp.ti is not None:
            # Given per real file; libtorrent wants one per file, pad files too.
            full = [0] * atp.ti.num_files()
            for entry, prio in zip(layout_of(atp.ti), spec.file_priorities, strict=True):
                full[entry.index] = prio
            atp.file_priorities = full
        if spec.trackers:
            atp.trackers = list(atp.trackers) + list(spec.trackers)
        hashes = atp.ti.info_hashes() if atp.ti is not None else atp.info_hashes
        if self._ses.find_torrent(hashes.get_best()).is_valid():
            # libtorrent would hand back the running torrent's handle
            raise DuplicateTorrentError(_best_id(hashes), "already in this session")
        try:
            handle = self._ses.add_torrent(atp)
        except RuntimeError as exc:
            raise TorrentdsError(spec.save_path, f"cannot add torrent: {exc}") from exc
        ref = TorrentRef(handle)
        self._refs[ref.infohash] = ref
        self._by_handle[handle] = ref
        for url in spec.web_seeds:
            ref.add_web_seed(url)
        for peer in spec.peers:
            ref.connect_peer(peer)
        return ref

    def events(self, timeout: float) -> list[Event]:
        """Alerts that arrived within ``timeout`` seconds, as events."""
        self._ses.wait_for_alert(int(timeout * 1000))
        out: list[Event] = []
        for a in self._ses.pop_alerts():
            event = _translate(a, self._id_of)
            if event is not None:
                out.append(event)
        return out

    def _id_of(self, handle: lt.torrent_handle) -> str:
        ref = self._by_handle.get(handle)
        return ref.infohash if ref is not None else _hash_of(handle)

    def remove(self, ref: TorrentRef) -> None:
        self._ses.remove_torrent(ref._h)
        self._refs.pop(ref.infohash, None)
        self._by_handle.pop(ref._h, None)

    def close(self, timeout: float = 5.0) -> None:
        """Pause (announcing ``stopped``) and let trackers hear it, bounded."""
        self._ses.pause()
        deadline = time.monotonic() + timeout
        for ref in list(self._refs.values()):
            self._ses.remove_torrent(ref._h)
        while time.monotonic() < deadline:
            if not self._ses.wait_for_alert(200):
                break
            if any(isinstance(a, lt.torrent_removed_alert) for a in self._ses.pop_alerts()):
                continue
        self._refs.clear()
        self._by_handle.clear()


def _translate(a: lt.alert, id_of: Callable[[lt.torrent_handle], str]) -> Event | None:
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
