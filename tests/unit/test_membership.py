"""The swarm's deal: each peer's place in the sorted ids of the peers still downloading."""

from __future__ import annotations

from torrentds.swarm.membership import Membership
from torrentds.swarm.order import Slice
from torrentds.torrent.peerid import PEER_ID_LENGTH, PEER_ID_PREFIX, PeerSeen, new_peer_id


def _id(tail: str) -> bytes:
    return PEER_ID_PREFIX + tail.encode().ljust(PEER_ID_LENGTH - len(PEER_ID_PREFIX), b"x")


def test_new_peer_ids_are_ours_and_differ() -> None:
    ids = {new_peer_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == PEER_ID_LENGTH and i.startswith(PEER_ID_PREFIX) for i in ids)


def test_every_peer_finds_the_same_deal() -> None:
    ids = [_id(t) for t in ("c", "a", "d", "b")]
    seen: dict[bytes, Slice | None] = {}
    for own in ids:
        members = Membership(own)
        members.see([PeerSeen(i, False) for i in ids], now=0.0)  # its own id is skipped
        seen[own] = members.deal()
    assert seen == {_id(t): Slice(i, 4) for i, t in enumerate("abcd")}


def test_seeds_other_clients_and_the_gone_are_not_members() -> None:
    members = Membership(_id("b"), grace=5.0)
    assert members.deal() is None  # alone
    origin, aria2 = PeerSeen(_id("0"), True), PeerSeen(b"A2-1-36-0-" + b"z" * 10, False)
    members.see([origin, aria2, PeerSeen(_id("a"), False), PeerSeen(_id("c"), False)], 0.0)
    assert members.deal() == Slice(1, 3)
    # "c" drops its connection for a moment: it keeps its place through the grace.
    members.see([PeerSeen(_id("a"), False)], 4.0)
    assert members.deal() == Slice(1, 3)
    members.see([PeerSeen(_id("a"), False)], 5.5)
    assert members.deal() == Slice(1, 2)
    # "a" finished (a seed now): out at once.
    members.see([PeerSeen(_id("a"), True)], 6.0)
    assert members.deal() is None
