"""A misbehaving BEP 19 web seed: a small HTTP server on 127.0.0.1 in a thread.

It serves ``NAME/PATH`` from a good copy of the dataset with Range support,
like nginx, except as ``mode`` says:

- ``ok``: right bytes (206 for a Range);
- ``404`` / ``500``: that status for every request;
- ``slow``: holds every request until the server is closed (or ``hold`` seconds);
- ``wrong``: 206 with the right length but every byte inverted.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
INVERT = bytes(range(255, -1, -1))  # b -> b ^ 0xFF


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that hung up mid-request is part of the game


class FaultyWebSeed:
    def __init__(self, name: str, folder: Path, mode: str, hold: float = 120.0) -> None:
        self.name = name
        self.folder = folder
        self.mode = mode
        self.hold = hold
        self.requests = 0
        self.wrong_bytes_sent = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        seed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                with seed.lock:
                    seed.requests += 1
                seed.answer(self)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        if self.mode in ("404", "500"):
            self._send(req, int(self.mode), b"no\n", {})
            return
        if self.mode == "slow":
            self.released.wait(self.hold)
            self._send(req, 503, b"late\n", {})
            return
        prefix = f"/{self.name}/"
        path = unquote(req.path.split("?", 1)[0])
        target = self.folder / path[len(prefix) :] if path.startswith(prefix) else None
        if target is None or ".." in path or not target.is_file():
            self._send(req, 404, b"no\n", {})
            return
        data = target.read_bytes()
        match = _RANGE.match(req.headers.get("Range", ""))
        status, headers = 200, {}
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        if self.mode == "wrong":
            data = data.translate(INVERT)
            with self.lock:
                self.wrong_bytes_sent += len(data)
        self._send(req, status, data, headers)

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            req.send_response(status)
            for k, v in headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(len(body)))
            req.send_header("Content-Type", "application/octet-stream")
            req.end_headers()
            if req.command != "HEAD":
                req.wfile.write(body)
        except OSError:
            pass  # the client hung up

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
