"""The peer index from the swarm itself, when neither an option nor the launcher
gives one. Standard library only.

Every torrentds peer picks its own peer id (``torrent.peerid``: our client
prefix, then random characters) and so knows it; every other peer sees the same id in
the handshake. The peers still downloading sort their ids the same way, so each
finds itself at the same place in everyone's list: peer ``I`` of ``K``, a slice
dealt with no configuration. It is re-dealt as peers join, finish or leave; a
peer that drops its connection for a moment keeps its place for
``GRACE_SECONDS``. Seeds (the origin, peers that finished) and other clients
(they would not follow the deal) are not members.

Each peer sees the members it is connected to: the deal agrees everywhere once
every downloading peer is connected to every other, as in a cluster's swarm of
tens of nodes (libtorrent connects to every peer the tracker and PEX name, up
to ``connections_limit``). Where views differ for a while, two peers may both
fetch a part (a few duplicate pieces) or nobody may (the window's fallback,
``priorities.STALL_SECONDS``, hands it to everyone).
"""

from __future__ import annotations

from collections.abc import Iterable

from torrentds.swarm.order import Slice
from torrentds.torrent.peerid import PeerSeen, is_ours

GRACE_SECONDS = 5.0


class Membership:
    """The torrentds peers still downloading, as this peer sees them."""

    def __init__(self, own_id: bytes, grace: float = GRACE_SECONDS) -> None:
        self.own_id = own_id
        self.grace = grace
        self._last_seen: dict[bytes, float] = {}

    def see(self, peers: Iterable[PeerSeen], now: float) -> None:
        """The peers connected now; members absent longer than the grace leave."""
        for peer in peers:
            if not is_ours(peer.peer_id) or peer.peer_id == self.own_id:
                continue
            if peer.seed:
                self._last_seen.pop(peer.peer_id, None)  # finished: out at once
            else:
                self._last_seen[peer.peer_id] = now
        for peer_id, seen in list(self._last_seen.items()):
            if now - seen > self.grace:
                del self._last_seen[peer_id]

    def deal(self) -> Slice | None:
        """This peer's slice among the members (None: it is alone)."""
        if not self._last_seen:
            return None
        members = sorted([self.own_id, *self._last_seen])
        return Slice(members.index(self.own_id), len(members))
