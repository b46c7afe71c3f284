"""A tiny BitTorrent peer on stdlib sockets that lies about some pieces.

It speaks the plain handshake (no extensions, no encryption), sends a bitfield
with every piece, unchokes, and answers ``request`` messages from a good copy of
the data, except for the pieces in ``bad``, whose blocks it sends inverted
(every byte XOR 0xFF). It listens on 127.0.0.1 and can also dial a peer.

``send_garbage`` is the other misbehaviour: raw bytes at a peer's listen port.
``MetadataPeer`` hands a magnet's downloader metadata with unsafe file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import libtorrent as lt

from tests.faults.helpers import Layout

PROTOCOL = b"\x13BitTorrent protocol"
HANDSHAKE_LEN = 68
CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL = range(9)
MAX_MESSAGE = 1 << 20
INVERT = bytes(range(255, -1, -1))  # b -> b ^ 0xFF


def handshake(infohash: bytes, peer_id: bytes) -> bytes:
    return PROTOCOL + bytes(8) + infohash + peer_id


def message(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", len(payload) + 1, kind) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


class EvilPeer:
    """Serves every piece of ``torrent`` from ``good``; blocks of ``bad`` pieces wrong."""

    def __init__(self, torrent: Path, good: Path, bad: Iterable[int]) -> None:
        self.layout = Layout.of(torrent)
        self.good = good
        self.bad = set(bad)
        self.peer_id = b"-EV0001-" + os.urandom(6).hex().encode()
        self.lock = threading.Lock()
        self.connections = 0  # completed plain handshakes
        self.refused = 0  # connections that did not start with a plain handshake
        self.blocks_sent = 0
        self.bad_blocks_sent = 0
        self.bad_pieces_sent: set[int] = set()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    # -- connections ------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, False), daemon=True).start()

    def dial(self, port: int) -> None:
        """Connect to a peer at 127.0.0.1:``port`` and speak first."""
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        threading.Thread(target=self._serve, args=(conn, True), daemon=True).start()

    def _serve(self, conn: socket.socket, outgoing: bool) -> None:
        with self.lock:
            self._socks.append(conn)
        try:
            conn.settimeout(30)
            if outgoing:
                conn.sendall(handshake(self.layout.infohash, self.peer_id))
            theirs = _recv_exact(conn, HANDSHAKE_LEN)
            if not theirs.startswith(PROTOCOL) or theirs[28:48] != self.layout.infohash:
                with self.lock:
                    self.refused += 1  # e.g. an encrypted (MSE) handshake
                return
            if not outgoing:
                conn.sendall(handshake(self.layout.infohash, self.peer_id))
            with self.lock:
                self.connections += 1
            n = self.layout.pieces
            bits = bytearray((n + 7) // 8)
            for i in range(n):
                bits[i // 8] |= 0x80 >> (i % 8)
            conn.sendall(message(BITFIELD, bytes(bits)) + message(UNCHOKE))
            while not self._stop.is_set():
                (length,) = struct.unpack(">I", _recv_exact(conn, 4))
                if length == 0:
                    continue  # keep-alive
                if length > MAX_MESSAGE:
                    return
                body = _recv_exact(conn, length)
                if body[0] == REQUEST and length == 13:
                    index, begin, size = struct.unpack(">III", body[1:13])
                    conn.sendall(self._block(index, begin, size))
        except (OSError, ConnectionError, struct.error):
            return
        finally:
            conn.close()

    def _block(self, index: int, begin: int, size: int) -> bytes:
        data = self.layout.read(self.good, index * self.layout.piece_size + begin, size)
        with self.lock:
            self.blocks_sent += 1
            if index in self.bad:
                data = data.translate(INVERT)
                self.bad_blocks_sent += 1
                self.bad_pieces_sent.add(index)
        return message(PIECE, struct.pack(">II", index, begin) + data)

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        with self.lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def send_garbage(port: int, payload: bytes, wait: float = 20.0) -> float | None:
    """Send ``payload`` to 127.0.0.1:``port``; seconds until the other side closed
    the connection (reset or EOF), or None if it was still open after ``wait``."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            return time.monotonic() - started  # closed on us mid-send
        deadline = started + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                return time.monotonic() - started  # reset
            if not chunk:
                return time.monotonic() - started
    return None


EXTENDED = 20
UT_METADATA = 3  # the id we ask peers to use for ut_metadata messages to us


def bencode(obj: Any) -> bytes:
    return lt.bencode(obj)


def bdecode(data: bytes) -> Any:
    return lt.bdecode(data)


class MetadataPeer:
    """Answers a magnet's metadata request (BEP 9) with ``info``, whatever it says.

    ``info`` is a bencoded info dict; its SHA-1 is the info-hash the peer
    serves. It has no pieces to give: it is there to hand out metadata a
    .torrent parser would refuse (file names with ``..``, absolute paths).
    """

    def __init__(self, info: bytes) -> None:
        self.info = info
        self.infohash = hashlib.sha1(info).digest()
        self.peer_id = b"-MD0001-" + os.urandom(6).hex().encode()
        self.metadata_sent = 0
        self._stop = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            theirs = _recv_exact(conn, HANDSHAKE_LEN)
            if not theirs.startswith(PROTOCOL) or theirs[28:48] != self.infohash:
                return  # an encrypted attempt: libtorrent retries in plain text
            reserved = bytearray(8)
            reserved[5] |= 0x10  # BEP 10 extension protocol
            conn.sendall(PROTOCOL + bytes(reserved) + self.infohash + self.peer_id)
            hello = {b"m": {b"ut_metadata": UT_METADATA}, b"metadata_size": len(self.info)}
            conn.sendall(message(EXTENDED, b"\0" + bencode(hello)))
            their_id = 0
            while not self._stop.is_set():
                (length,) = struct.unpack(">I", _recv_exact(conn, 4))
                if length == 0 or length > MAX_MESSAGE:
                    if length:
                        return
                    continue
                body = _recv_exact(conn, length)
                if body[0] != EXTENDED:
                    continue
                doc = bdecode(body[2:])
                if not isinstance(doc, dict):
                    continue
                if body[1] == 0:  # their extension handshake
                    m = doc.get(b"m", {})
                    their_id = int(m.get(b"ut_metadata", 0)) if isinstance(m, dict) else 0
                elif body[1] == UT_METADATA and doc.get(b"msg_type") == 0 and their_id:
                    piece = int(doc[b"piece"])
                    chunk = self.info[piece * 16384 : (piece + 1) * 16384]
                    head = {b"msg_type": 1, b"piece": piece, b"total_size": len(self.info)}
                    conn.sendall(message(EXTENDED, bytes([their_id]) + bencode(head) + chunk))
                    self.metadata_sent += 1
        except (OSError, ConnectionError, struct.error, KeyError, ValueError, TypeError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.server.close()
