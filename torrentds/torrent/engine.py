"""The libtorrent session: its settings, torrents added to it, alerts as plain events.

Only the ``torrent`` folder imports libtorrent (``metainfo`` reads torrents
with it, ``piececheck`` checks pieces offline). Everything above sees
dataclasses (``SessionOptions``, ``TorrentStatus``, the ``Event`` types) and
``TorrentRef`` handles; libtorrent's types and errors do not leak out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import libtorrent as lt

from torrentds.errors import DuplicateTorrentError, MetainfoError, TorrentdsError
from torrentds.options import DEFAULT_LISTEN, SessionOptions
from torrentds.torrent.addresses import (
    listen_interface,
)
from torrentds.torrent.alerts import Event, translate
from torrentds.torrent.layout import best_id, layout_of, swarm_id
from torrentds.torrent.peerid import new_peer_id
from torrentds.torrent.ref import TorrentRef

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
        # once; 16 MiB (the default) spans many parts (see order.slice_owners).
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


def _session_settings(opts: SessionOptions, peer_id: bytes) -> dict[str, int | bool | str]:
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
        # All 20 characters: libtorrent fills only what is missing with random ones,
        # so this is our peer id, and the swarm's deal can find us (swarm.membership).
        "peer_fingerprint": peer_id.decode(),
        "stop_tracker_timeout": 2,
        "announce_to_all_tiers": False,
        "auto_manage_startup": 0,
    }
    settings.update(lan_settings())
    if opts.utp:
        settings["enable_outgoing_utp"] = settings["enable_incoming_utp"] = True
    return settings


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
        self.peer_id = new_peer_id()
        settings = _session_settings(replace(opts, listen=interface), self.peer_id)
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
        """Add a torrent to the session; DuplicateTorrentError if it is there."""
        atp = _add_params(spec)
        hashes = atp.ti.info_hashes() if atp.ti is not None else atp.info_hashes
        if self._ses.find_torrent(hashes.get_best()).is_valid():
            # libtorrent would hand back the running torrent's handle
            raise DuplicateTorrentError(best_id(hashes), "already in this session")
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
            event = translate(a, self._id_of)
            if event is not None:
                out.append(event)
        return out

    def _id_of(self, handle: lt.torrent_handle) -> str:
        ref = self._by_handle.get(handle)
        return ref.infohash if ref is not None else swarm_id(handle)

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


def _add_params(spec: AddSpec) -> lt.add_torrent_params:
    """libtorrent's parameters for ``spec``."""
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
    if spec.trackers:
        atp.trackers = list(atp.trackers) + list(spec.trackers)
    if spec.root_name and atp.ti is not None and atp.ti.name() != spec.root_name:
        atp.renamed_files = _renamed(atp.ti.layout(), spec.root_name)
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
    return atp


def _renamed(fs: lt.file_storage, root: str) -> dict[int, str]:
    """Each file's path with the torrent's top folder (or single file) named ``root``."""
    single = fs.num_files() == 1 and "/" not in fs.file_path(0)
    return {
        i: root if single else f"{root}/{fs.file_path(i).split('/', 1)[-1]}"
        for i in range(fs.num_files())
    }
