"""A bare libtorrent seeder and torrent builder for tests.

The seeder checks nothing of ours, so it serves any files as they are (a
torrent with a hostile ``torrentds.json``, a single file, another tool's
layout); it listens on 127.0.0.1 with DHT, LSD and UPnP off.
"""

from __future__ import annotations

from pathlib import Path

import libtorrent as lt

from tests.procs import wait_until

PIECE = 16 << 10


def make_torrent(root: Path, name: str, out: Path) -> bytes:
    """A v1 torrent of ``root/name`` (a folder or one file), loaded back to check it."""
    ct = lt.create_torrent(lt.list_files(str(root / name)), PIECE, lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, str(root))
    data = bytes(lt.bencode(ct.generate()))
    lt.torrent_info(data)  # libtorrent can load what it made
    out.write_bytes(data)
    return data


class Seeder:
    """A bare libtorrent session seeding files as they are, on 127.0.0.1."""

    def __init__(self, root: Path, torrent: bytes, rate: int = 0) -> None:
        settings = {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "webtorrent_stun_server": "",
            "upload_rate_limit": rate,
        }
        self.ses = lt.session(settings)  # type: ignore[call-overload]
        if rate:
            f = lt.ip_filter()  # loopback peers are unlimited unless put in the global class
            f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
            self.ses.set_peer_class_filter(f)
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
        atp.save_path = str(root)
        atp.trackers = []
        self.handle = self.ses.add_torrent(atp)
        hashes = atp.ti.info_hashes()
        self.infohash = str(hashes.v1)
        wait_until(
            lambda: self.handle.status().is_seeding, 20, "the seeder to check its files", 0.05
        )

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.ses.listen_port()}"

    def stop(self) -> None:
        self.ses.remove_torrent(self.handle)
