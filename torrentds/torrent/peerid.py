"""Our peer id: known to us, the same in every other peer's eyes. Standard library only.

libtorrent would make one up per torrent; we give it all 20 characters
(``Engine``) so ``swarm.membership`` can find this peer in the list every
peer sorts.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

# BitTorrent's client-id convention: "-", two letters, four version characters, "-".
PEER_ID_PREFIX = b"-TD0100-"
PEER_ID_LENGTH = 20
_ID_CHARS = string.ascii_letters + string.digits


def new_peer_id() -> bytes:
    """A fresh peer id: our prefix, then random letters and digits."""
    tail = "".join(secrets.choice(_ID_CHARS) for _ in range(PEER_ID_LENGTH - len(PEER_ID_PREFIX)))
    return PEER_ID_PREFIX + tail.encode()


def is_ours(peer_id: bytes) -> bool:
    """Whether a peer id is a torrentds peer's."""
    return peer_id.startswith(PEER_ID_PREFIX)


@dataclass(frozen=True)
class PeerSeen:
    peer_id: bytes
    seed: bool  # has every piece
