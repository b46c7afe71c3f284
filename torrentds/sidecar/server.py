"""The sidecar's local HTTP API: thin handlers over the ``Sidecar`` facade.

Standard library ``http.server`` (one thread per request) and
``prometheus_client`` for ``/metrics``. No route reads or serves a file: the
only paths a request can name are data folders for ``POST /torrents``, and
those must lie inside the sidecar's data roots.

Bound to 127.0.0.1 by default. A non-loopback address needs a token, and then
every request must carry ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import ipaddress
import json
import os
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from torrentds.errors import (
    ConfigError,
    NotFoundError,
    StorageError,
    TorrentdsError,
    UsageError,
    http_status_of,
)
from torrentds.sidecar import config as cfg
from torrentds.sidecar.facade import Sidecar
from torrentds.sidecar.metrics import SidecarCollector

MAX_BODY = 1 << 20
_READS = ("/status", "/shards", "/metrics")  # answered from the runner's published view
Answer = tuple[HTTPStatus, bytes, str]
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

ROUTES: list[dict[str, str]] = [
    {"method": "GET", "path": "/", "description": "this list of routes"},
    {
        "method": "GET",
        "path": "/status",
        "description": "per torrent: name, infohash, state, progress, rates, peers, "
        "shards ready/total, seeding time left",
    },
    {
        "method": "GET",
        "path": "/shards?torrent=INFOHASH&split=SPLIT",
        "description": "each shard's state: pending, downloading, verifying, ready, failed",
    },
    {"method": "GET", "path": "/metrics", "description": "Prometheus metrics"},
    {
        "method": "POST",
        "path": "/torrents",
        "description": 'add a dataset: JSON {"source": ..., "dir": ..., "seed_hours": ...}',
    },
    {
        "method": "DELETE",
        "path": "/torrents/INFOHASH",
        "description": "stop one torrent (resume data saved, files kept)",
    },
]


class ApiError(Exception):
    """An HTTP error answer: status, a short error name and a detail line."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(listen, "the API address must be HOST:PORT, e.g. 127.0.0.1:8700")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another host name: assume it is reachable from outside


def check_bind(listen: str, token: str | None) -> tuple[str, int]:
    """Refuse a non-loopback API address without a token; returns (host, port)."""
    host, port = split_listen(listen)
    if not is_loopback(host) and not token:
        raise UsageError(
            listen,
            "refusing to serve the API beyond loopback without a token "
            "(--api-token, [api] token or TORRENTDS_API_TOKEN)",
        )
    return host, port


class ApiServer:
    """The HTTP API of one sidecar; binds at construction, serves after ``start``."""

    def __init__(self, listen: str, token: str | None) -> None:
        host, port = check_bind(listen, token)
        self.token = token
        self.sidecar: Sidecar | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        server_cls = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_cls((host, port), _Handler)
        except OSError as exc:
            raise TorrentdsError(listen, f"cannot listen: {exc.strerror or exc}") from exc
        self.httpd.api = self
        self._thread: threading.Thread | None = None
        # Read answers by (method, target), kept while the view they came from is current:
        # a scrape or a poll between two publishes is encoded once, not once per reader.
        self._answers: dict[tuple[str, str], tuple[object, HTTPStatus, bytes, str]] = {}
        self._answers_lock = threading.Lock()

    def answer(self, method: str, target: str, body: Callable[[], bytes]) -> Answer:
        """(status, body, content type) for one request; reads of the same view are
        answered from the last encoding."""
        sidecar = self.sidecar
        reading = sidecar is not None and sidecar.running and method == "GET"
        stamp = sidecar.view_stamp if reading and sidecar is not None else None
        key = (method, target)
        if stamp is not None:
            with self._answers_lock:
                kept = self._answers.get(key)
            if kept is not None and kept[0] is stamp:
                return kept[1], kept[2], kept[3]
        status, value = self.dispatch(method, target, body)
        if isinstance(value, bytes):
            encoded, ctype = value, CONTENT_TYPE_LATEST
        else:
            encoded, ctype = _json(value), "application/json"
        if stamp is not None and urlsplit(target).path in _READS:
            with self._answers_lock:
                if len(self._answers) >= 64:
                    self._answers.clear()
                self._answers[key] = (stamp, status, encoded, ctype)
        return status, encoded, ctype

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self, sidecar: Sidecar) -> None:
        """Serve requests for ``sidecar`` on a background thread."""
        self.sidecar = sidecar
        self.registry.register(SidecarCollector(sidecar))
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving (waits for the serving loop, not for slow clients)."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    # -- routes -----------------------------------------------------------------
    def dispatch(
        self, method: str, target: str, body: Callable[[], bytes]
    ) -> tuple[HTTPStatus, Any]:
        """Route one request; returns (status, JSON-able value or metrics text)."""
        sidecar = self.sidecar
        if sidecar is None or not sidecar.running:
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "the sidecar is not running")
        url = urlsplit(target)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        if path == "/":
            _allow(method, "GET")
            return HTTPStatus.OK, {"routes": ROUTES}
        if path == "/status":
            _allow(method, "GET")
            return HTTPStatus.OK, {"torrents": sidecar.status()}
        if path == "/shards":
            _allow(method, "GET")
            torrent = _one(query, "torrent")
            if torrent is not None and not _HEX40.fullmatch(torrent):
                raise NotFoundError(torrent, "no such torrent in this sidecar")
            shards = sidecar.shards(torrent.lower() if torrent else None, _one(query, "split"))
            return HTTPStatus.OK, {"shards": shards}
        if path == "/metrics":
            _allow(method, "GET")
            return HTTPStatus.OK, generate_latest(self.registry)
        if path == "/torrents":
            _allow(method, "POST")
            return HTTPStatus.CREATED, self._add(sidecar, body())
        if path.startswith("/torrents/"):
            infohash = path.removeprefix("/torrents/")
            if not _HEX40.fullmatch(infohash):
                raise ApiError(HTTPStatus.NOT_FOUND, f"no route {path}")
            _allow(method, "DELETE")
            return HTTPStatus.OK, {"removed": sidecar.remove(infohash.lower())}
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route {path}")

    def _add(self, sidecar: Sidecar, raw: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"request body is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body is nested too deeply") from exc
        except ValueError as exc:  # Python's limit on the digits of an integer
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "request body holds a number with too many digits"
            ) from exc
        if not isinstance(doc, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        if "dir" not in doc:
            raise ConfigError("request body", "'dir' is required")
        opts = cfg.parse_dataset(doc, "request body")
        roots = cfg.data_roots(sidecar.conf)
        directory = _inside(opts.directory, roots, "dir")
        source = opts.source
        if not source.startswith(("magnet:", "http://", "https://")) and not _HEX40.fullmatch(
            source
        ):
            source = str(_inside(Path(source), roots, "source"))
        opts = dataclasses.replace(opts, directory=directory, source=source)
        try:
            return sidecar.add(opts)
        except StorageError as exc:
            # The folder the request names cannot be used: not writable, something
            # in the way, a symlink that leads out of it.
            raise ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from exc


def _inside(path: Path, roots: list[Path], field: str) -> Path:
    """``path`` (relative: to the first root) if it lies inside a data root, else 400."""
    full = Path(os.path.abspath(roots[0] / path))
    real = os.path.realpath(full)
    for root in roots:
        if Path(real).is_relative_to(os.path.realpath(root)):
            return full
    shown = ", ".join(str(r) for r in roots)
    raise UsageError(str(path), f"{field} must be inside the sidecar's data root ({shown})")


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"use {allowed}")


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    if not values or values[-1] == "":
        return None
    return values[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request is no one's business (and never printed)."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "torrentds"
    sys_version = ""
    # A client that stops sending (a short body, an unfinished request line)
    # gives its thread back after this many seconds.
    timeout = 30

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests too broken to route (bad request line, huge headers) get the
        same one-line JSON error as every other refusal, not the stock HTML page."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self.close_connection = True
        self._send(status, _error(status, message or status.description), "application/json")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")

    def log_message(self, format: str, *args: Any) -> None:
        """Library code never prints; the access log is left out."""

    def _serve(self, method: str) -> None:
        api = self.server.api
        try:
            self._check_auth(api.token)
            status, body, ctype = api.answer(method, self.path, self._body)
        except ApiError as exc:
            status, body, ctype = exc.status, _error(exc.status, exc.detail), "application/json"
        except TorrentdsError as exc:
            status = http_status_of(exc)
            body, ctype = _error(status, str(exc)), "application/json"
        except Exception as exc:  # a bug: answer 500 rather than drop the connection
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body, ctype = _error(status, f"{type(exc).__name__}: {exc}"), "application/json"
        self._send(status, body, ctype)

    def _check_auth(self, token: str | None) -> None:
        if token is None:
            # Loopback without a token: refuse pages that reach us through a
            # rebinding DNS name (their Host is not a loopback name).
            host = (self.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0].strip("[]")
            if host and not is_loopback(host):
                raise ApiError(HTTPStatus.FORBIDDEN, f"Host {host!r} is not a loopback name")
            return
        given = self.headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "send the body with a Content-Length")
        length_text = self.headers.get("Content-Length") or "0"
        if not length_text.isdigit():
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            if length <= 4 * MAX_BODY:
                # Read (and drop) a body a little too big, so the client that is
                # still sending it gets the answer instead of a reset connection.
                while length > 0:
                    chunk = self.rfile.read(min(length, 64 << 10))
                    if not chunk:
                        break
                    length -= len(chunk)
            raise ApiError(HTTPStatus.BAD_REQUEST, f"request body over {MAX_BODY} bytes")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            # Browsers send other types cross-site without asking first; JSON they must ask.
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Type must be application/json")
        try:
            return self.rfile.read(length)
        except TimeoutError as exc:
            self.close_connection = True
            raise ApiError(HTTPStatus.REQUEST_TIMEOUT, "request body not received in time") from exc

    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        with contextlib.suppress(OSError):  # the client went away
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", "Bearer")
            if status == HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", _allowed_for(self.path))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)


def _json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, default=str) + "\n").encode()


def _error(status: HTTPStatus, detail: str) -> bytes:
    return _json({"error": status.phrase, "detail": detail})


def _allowed_for(target: str) -> str:
    path = urlsplit(target).path
    if path == "/torrents":
        return "POST"
    if path.startswith("/torrents/"):
        return "DELETE"
    return "GET"
