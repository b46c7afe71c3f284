"""The only torf importer: build .torrent files and magnets, read every source form.

Sources are a magnet URI, a .torrent path, an http(s) URL of a .torrent, or a
bare 40-hex info-hash. torf's and requests' exceptions are translated here,
once, into ``MetainfoError``/``FetchError`` that name the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import requests
import torf

from torrentds import __version__
from torrentds.errors import FetchError, MetainfoError, StorageError

DEFAULT_TRACKERS: tuple[tuple[str, ...], ...] = (
    ("https://academictorrents.com/announce.php",),
    ("udp://tracker.opentrackr.org:1337/announce",),
)
MAX_TORRENT_BYTES = 10_000_000
HTTP_TIMEOUT = 30.0
_HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")

SourceKind = Literal["magnet", "file", "url", "infohash"]


@dataclass(frozen=True)
class TorrentInfo:
    """What a torrent (or, with ``has_metadata`` false, a magnet) says."""

    name: str
    infohash: str
    magnet: str
    trackers: list[list[str]]
    web_seeds: list[str]
    has_metadata: bool = True
    size: int = 0
    piece_size: int = 0
    piece_count: int = 0
    files: list[tuple[str, int]] = field(default_factory=list)
    private: bool = False
    comment: str | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class Source:
    """A parsed SOURCE argument; ``torrent`` holds .torrent bytes when known."""

    kind: SourceKind
    text: str
    info: TorrentInfo
    torrent: bytes | None = None


def build_torrent(
    name: str,
    files: Sequence[tuple[str, int]],
    piece_size: int,
    pieces: bytes,
    trackers: Sequence[Sequence[str]],
    web_seeds: Sequence[str] = (),
    private: bool = False,
    comment: str | None = None,
    creation_date: datetime | None = None,
) -> tuple[bytes, TorrentInfo]:
    """Bencoded .torrent for ``files`` (relative POSIX paths, in this order)."""
    try:
        t = torf.Torrent(
            trackers=[list(tier) for tier in trackers] or None,  # type: ignore[misc]
            webseeds=list(web_seeds) or None,
            private=private or None,
            comment=comment,
            creation_date=creation_date,
            created_by=f"torrentds {__version__}",
        )
        info = t.metainfo["info"]
        info["name"] = name
        info["piece length"] = piece_size
        info["files"] = [{"length": size, "path": rel.split("/")} for rel, size in files]
        info["pieces"] = pieces
        data = t.dump()
    except torf.TorfError as exc:
        raise MetainfoError(name, f"cannot build torrent: {exc}") from exc
    return data, _describe(t)


def _describe(t: torf.Torrent) -> TorrentInfo:
    info = t.metainfo["info"]
    if "files" in info:
        files = [("/".join(str(p) for p in f["path"]), int(f["length"])) for f in info["files"]]
    else:
        files = [(str(info["name"]), int(info["length"]))]
    comment = t.comment
    created_by = t.created_by
    return TorrentInfo(
        name=str(t.name),
        infohash=str(t.infohash),
        magnet=str(t.magnet(size=False)),
        trackers=[list(tier) for tier in t.trackers],
        web_seeds=list(t.webseeds),
        size=int(t.size),
        piece_size=int(t.piece_size),
        piece_count=int(t.pieces),
        files=files,
        private=bool(t.private),
        comment=str(comment) if comment else None,
        created_by=str(created_by) if created_by else None,
    )


def read_torrent(data: bytes, source: str) -> TorrentInfo:
    """Parse .torrent bytes; refuses file names that could escape the folder."""
    t = _read(data, source)
    try:
        return _describe(t)
    except (torf.TorfError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MetainfoError(source, f"invalid torrent: {exc}") from exc


def _read(data: bytes, source: str) -> torf.Torrent:
    if len(data) > MAX_TORRENT_BYTES:
        raise MetainfoError(source, f"torrent file is larger than {MAX_TORRENT_BYTES} bytes")
    try:
        t = torf.Torrent.read_stream(data)
    except torf.BdecodeError as exc:
        raise MetainfoError(source, "not a torrent file (invalid bencoding)") from exc
    except torf.TorfError as exc:
        raise MetainfoError(source, f"invalid torrent: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MetainfoError(source, f"invalid torrent: {exc}") from exc
    _check_names(t, source)
    return t


def _check_names(t: torf.Torrent, source: str) -> None:
    info = t.metainfo["info"]
    names: list[list[Any]] = [[info.get("name", "")]]
    names += [list(f.get("path", [])) for f in info.get("files", [])]
    for parts in names:
        for part in parts:
            text = str(part)
            if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
                raise MetainfoError(source, f"unsafe file name {text!r} in torrent")


def parse_source(text: str, default_trackers: bool = True) -> Source:
    """Recognise and read SOURCE: magnet, .torrent path, http(s) URL or info-hash.

    A bare info-hash becomes a magnet with the default trackers, unless
    ``default_trackers`` is false (closed clusters, tests).
    """
    if text.startswith("magnet:"):
        return Source("magnet", text, _magnet_info(text))
    if text.startswith(("http://", "https://")):
        data = fetch_torrent(text)
        return Source("url", text, read_torrent(data, text), data)
    if _HEX40.match(text):
        tiers = DEFAULT_TRACKERS if default_trackers else ()
        tr = "".join(f"&tr={quote(u, safe='')}" for tier in tiers for u in tier)
        return Source("infohash", text, _magnet_info(f"magnet:?xt=urn:btih:{text.lower()}{tr}"))
    path = Path(text)
    if path.exists():
        try:
            data = path.read_bytes()[: MAX_TORRENT_BYTES + 1]
        except OSError as exc:
            raise MetainfoError(path, f"cannot read: {exc.strerror or exc}") from exc
        return Source("file", text, read_torrent(data, text), data)
    if re.fullmatch(r"[0-9a-fA-F]+", text):
        raise MetainfoError(text, f"an info-hash has 40 hex digits, this has {len(text)}")
    raise MetainfoError(text, "not a magnet, .torrent file, http(s) URL or 40-hex info-hash")


def _magnet_info(uri: str) -> TorrentInfo:
    try:
        m = torf.Magnet.from_string(uri)
    except torf.TorfError as exc:
        raise MetainfoError(uri, f"malformed magnet link: {exc}") from exc
    return TorrentInfo(
        name=str(m.dn or ""),
        infohash=str(m.infohash).lower(),
        magnet=str(m),
        trackers=[[str(u)] for u in m.tr],
        web_seeds=[str(u) for u in m.ws],
        has_metadata=False,
        size=int(m.xl or 0),
    )


def fetch_torrent(url: str) -> bytes:
    """Download a .torrent over http(s); refuses HTML and error pages."""
    try:
        resp = requests.get(url, timeout=HTTP_TIMEOUT, stream=True)
        resp.raise_for_status()
        data = resp.raw.read(MAX_TORRENT_BYTES + 1, decode_content=True)
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise FetchError(url, f"HTTP {code}") from exc
    except (requests.RequestException, OSError) as exc:
        raise FetchError(url, f"cannot fetch: {type(exc).__name__}") from exc
    if not data.startswith(b"d"):
        kind = resp.headers.get("Content-Type", "unknown type")
        raise FetchError(url, f"answer is not a torrent file ({kind})")
    return bytes(data)


def check_web_seed(url: str, name: str, first_file: str, timeout: float = 10.0) -> str | None:
    """A warning if the web seed does not serve a Range request with 206."""
    target = url + (f"{name}/{first_file}" if url.endswith("/") else "")
    try:
        resp = requests.get(target, headers={"Range": "bytes=0-0"}, timeout=timeout, stream=True)
        resp.close()
    except requests.RequestException as exc:
        return f"{target}: web seed did not answer ({type(exc).__name__})"
    if resp.status_code != 206:
        return f"{target}: web seed answered HTTP {resp.status_code} to a Range request, not 206"
    return None


@dataclass(frozen=True)
class PieceFailure:
    path: str
    piece: int
    reason: str


def verify_pieces(
    data: bytes, folder: Path, source: str, advance: Callable[[int], None] | None = None
) -> list[PieceFailure]:
    """Check every piece of ``folder`` against the torrent; returns the failures."""
    t = _read(data, source)
    failures: list[PieceFailure] = []
    piece_size = int(t.piece_size)
    done = [0]

    def callback(
        _t: torf.Torrent,
        path: str,
        checked: int,
        total: int,
        index: int,
        _hash: bytes | None,
        exc: Exception | None,
    ) -> None:
        if advance and checked > done[0]:
            advance((checked - done[0]) * piece_size)
            done[0] = checked
        if exc is not None:
            failures.append(PieceFailure(str(path), int(index), _torf_reason(exc)))

    try:
        t.verify(str(folder), callback=callback)
    except torf.TorfError as exc:
        raise StorageError(folder, f"cannot verify: {exc}") from exc
    return failures


def _torf_reason(exc: Exception) -> str:
    if isinstance(exc, torf.VerifyContentError):
        return "piece hash mismatch"
    if isinstance(exc, torf.VerifyFileSizeError):
        return f"size {exc.actual_size} != {exc.expected_size} in torrent"
    return str(exc)
