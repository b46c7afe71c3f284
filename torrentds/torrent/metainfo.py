"""Read every SOURCE form with libtorrent; build .torrent files with torf.

Sources are a magnet URI, a .torrent path, an http(s) URL of a .torrent, or a
bare info-hash (40 hex digits: v1, 64: v2). Reading goes through libtorrent,
the same parser the swarm uses, so the info-hash, the file list (pad files
left out) and what is accepted agree with what the engine will do; torf
re-encodes the info dict and refuses torrents libtorrent loads. torf remains
the builder (``build_torrent``), the only torf importer. libtorrent's and
torf's exceptions are translated here, once, into ``MetainfoError`` naming the
source (requests' in ``web``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, quote_from_bytes

import libtorrent as lt
import torf

from torrentds import __version__
from torrentds.errors import MetainfoError, shorten
from torrentds.torrent import web

DEFAULT_TRACKERS: tuple[tuple[str, ...], ...] = (
    ("https://academictorrents.com/announce.php",),
    ("udp://tracker.opentrackr.org:1337/announce",),
)
# libtorrent loads up to 2,097,152 pieces (42 MB of v1 hashes); a bound, not a taste.
MAX_TORRENT_BYTES = 50_000_000
_HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")

SourceKind = Literal["magnet", "file", "url", "infohash"]
TorrentVersion = Literal["v1", "v2", "hybrid"]


@dataclass(frozen=True)
class TorrentInfo:
    """What a torrent (or, with ``has_metadata`` false, a magnet) says.

    ``infohash`` is the v1 (SHA-1, 40 hex) info-hash when the torrent has one,
    else the v2 (SHA-256, 64 hex); ``infohash_v2`` is the v2 one when present.
    ``files`` are (path, size) without BEP 47 pad files: for a multi-file
    torrent the path is relative to the torrent's folder (no leading NAME/),
    for a single-file torrent (``single_file``) it is NAME, the file itself.
    """

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
    infohash_v2: str | None = None
    version: TorrentVersion = "v1"
    single_file: bool = False


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
    # Described the way every other torrent is read, so the magnet is the same.
    return data, read_torrent(data, name)


def read_torrent(data: bytes, source: str) -> TorrentInfo:
    """Parse .torrent bytes with libtorrent; refuses names that could escape the folder."""
    atp = load_torrent(data, source)
    ti = atp.ti
    assert ti is not None  # load_torrent refuses a torrent without an info dict
    try:
        return _describe(atp, ti, data, source)
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MetainfoError(source, f"invalid torrent: {exc}") from exc


def load_torrent(data: bytes, source: str) -> lt.add_torrent_params:
    """libtorrent's parse of .torrent bytes, after the size and file-name checks."""
    if len(data) > MAX_TORRENT_BYTES:
        raise MetainfoError(source, f"torrent file is larger than {MAX_TORRENT_BYTES} bytes")
    try:
        # Names first, on the raw bencoding: libtorrent would refuse or quietly
        # rewrite an unsafe one, and either way the reason should say so.
        top: object = lt.bdecode(data)
        info = top.get(b"info") if isinstance(top, dict) else None
        if isinstance(info, dict):
            _check_names(info, source)
        atp = lt.load_torrent_buffer(data)
    except RuntimeError as exc:
        raise MetainfoError(source, _lt_reason(exc)) from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # UnicodeError included
        raise MetainfoError(source, f"invalid torrent: {exc}") from exc
    if atp.ti is None:
        raise MetainfoError(source, "invalid torrent: no info dictionary")
    return atp


def _lt_reason(exc: RuntimeError) -> str:
    text = _lt_text(exc)
    if "[bdecode:" in str(exc):
        return f"not a torrent file (invalid bencoding: {text})"
    return f"invalid torrent: {text}"


def _check_names(info: Mapping[Any, object], source: str) -> None:
    """Refuse path parts that are empty, ``.``/``..``, or hold a separator or NUL.

    Checked on the raw bencoded names: libtorrent would sanitise them quietly,
    and a name it rewrote is a torrent made to escape, not one to trust.
    """
    names: list[object] = [info.get(b"name"), info.get(b"name.utf-8")]
    files = info.get(b"files")
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict):
            for key in (b"path", b"path.utf-8"):
                parts = entry.get(key)
                names += parts if isinstance(parts, list) else []
    tree = info.get(b"file tree")
    if isinstance(tree, dict):
        names += _tree_names(tree, top=True)
    for part in names:
        if isinstance(part, bytes) and _unsafe(part):
            text = part.decode("utf-8", "replace")
            raise MetainfoError(source, f"unsafe file name {text!r} in torrent")


def _tree_names(node: Mapping[Any, object], top: bool) -> list[object]:
    """Every key of a BEP 52 ``file tree``; b"" below the top marks a file's own entry."""
    out: list[object] = []
    for key, sub in node.items():
        if key == b"" and not top:
            continue
        out.append(key)
        if isinstance(sub, dict):
            out += _tree_names(sub, top=False)
    return out


def _unsafe(part: bytes) -> bool:
    return part in (b"", b".", b"..") or any(c in part for c in (b"/", b"\\", b"\0"))


def _describe(
    atp: lt.add_torrent_params, ti: lt.torrent_info, data: bytes, source: str
) -> TorrentInfo:
    hashes = ti.info_hashes()
    v1 = str(hashes.v1) if hashes.has_v1() else None
    v2 = str(hashes.v2) if hashes.has_v2() else None
    name = ti.name()
    fs = ti.layout()
    entries: list[tuple[str, int]] = []
    for i in range(fs.num_files()):
        flags = fs.file_flags(i)
        if flags & lt.file_storage.flag_pad_file:
            continue  # BEP 47 padding: never on disk, no one's data
        if flags & lt.file_storage.flag_symlink:
            raise MetainfoError(source, f"symlink {fs.file_path(i)!r} in torrent (not supported)")
        entries.append((fs.file_path(i), fs.file_size(i)))
    # libtorrent puts a single file at NAME, every file of a folder at NAME/...
    single = len(entries) == 1 and entries[0][0] == name
    files = entries if single else [(p.split("/", 1)[-1], size) for p, size in entries]
    try:
        trackers = _tiers(atp.trackers, atp.tracker_tiers)
    except UnicodeDecodeError:
        # libtorrent keeps a URL's bytes as they are; Python cannot decode them.
        trackers = _raw_tiers(data)
    web_seeds = [u for u in atp.url_seeds if u]  # libtorrent %-escapes these itself
    return TorrentInfo(
        name=name,
        infohash=v1 or v2 or "",
        magnet=make_magnet(v1, v2, name, trackers, web_seeds),
        trackers=trackers,
        web_seeds=web_seeds,
        size=sum(size for _, size in files),
        piece_size=ti.piece_length(),
        piece_count=ti.num_pieces(),
        files=files,
        private=ti.priv(),
        comment=atp.comment or None,
        created_by=atp.created_by or None,
        infohash_v2=v2,
        version="hybrid" if v1 and v2 else "v2" if v2 else "v1",
        single_file=single,
    )


def _tiers(urls: Sequence[str], tiers: Sequence[int]) -> list[list[str]]:
    by_tier: dict[int, list[str]] = {}
    for i, url in enumerate(urls):
        if url:
            by_tier.setdefault(tiers[i] if i < len(tiers) else 0, []).append(url)
    return [by_tier[t] for t in sorted(by_tier)]


def _raw_tiers(data: bytes) -> list[list[str]]:
    """Trackers by tier from the bencoding, bytes that are not UTF-8 %-escaped."""
    top: object = lt.bdecode(data)
    if not isinstance(top, dict):
        return []
    out: list[list[str]] = []
    tiers = top.get(b"announce-list")
    for tier in tiers if isinstance(tiers, list) else []:
        urls = [_url_text(u) for u in tier if isinstance(u, bytes) and u.strip()]
        if urls:
            out.append(urls)
    announce = top.get(b"announce")
    if not out and isinstance(announce, bytes) and announce.strip():
        out = [[_url_text(announce)]]
    return out


def _url_text(raw: bytes) -> str:
    return quote_from_bytes(raw.strip(), safe="!#$%&'()*+,/:;=?@[]~")


def make_magnet(
    v1: str | None,
    v2: str | None,
    name: str,
    trackers: Sequence[Sequence[str]],
    web_seeds: Sequence[str],
) -> str:
    """``magnet:?xt=urn:btih:V1&xt=urn:btmh:1220V2&dn=…&tr=…&ws=…`` (hybrid: both xt)."""
    parts = []
    if v1:
        parts.append(f"xt=urn:btih:{v1}")
    if v2:
        parts.append(f"xt=urn:btmh:1220{v2}")  # multihash: 0x12 sha2-256, 0x20 bytes
    if name:
        parts.append("dn=" + quote(name, safe=""))
    parts += ["tr=" + quote(url, safe="") for tier in trackers for url in tier]
    parts += ["ws=" + quote(url, safe="") for url in web_seeds]
    return "magnet:?" + "&".join(parts)


def parse_source(text: str, default_trackers: bool = True) -> Source:
    """Recognise and read SOURCE: magnet, .torrent path, http(s) URL or info-hash.

    A bare info-hash (40 hex: v1, 64 hex: v2) becomes a magnet with the default
    trackers, unless ``default_trackers`` is false (closed clusters, tests).
    """
    if text.startswith("magnet:"):
        return Source("magnet", text, _magnet_info(text))
    if text.startswith(("http://", "https://")):
        data = web.fetch_torrent(text, MAX_TORRENT_BYTES)
        return Source("url", text, read_torrent(data, text), data)
    if _HEX40.match(text) or _HEX64.match(text):
        tiers = DEFAULT_TRACKERS if default_trackers else ()
        tr = "".join(f"&tr={quote(u, safe='')}" for tier in tiers for u in tier)
        xt = f"btih:{text.lower()}" if len(text) == 40 else f"btmh:1220{text.lower()}"
        return Source("infohash", text, _magnet_info(f"magnet:?xt=urn:{xt}{tr}"))
    path = Path(text)
    if _exists(path):
        try:
            data = path.read_bytes()[: MAX_TORRENT_BYTES + 1]
        except OSError as exc:
            raise MetainfoError(path, f"cannot read: {exc.strerror or exc}") from exc
        return Source("file", text, read_torrent(data, text), data)
    if re.fullmatch(r"[0-9a-fA-F]+", text):
        raise MetainfoError(
            text, f"an info-hash has 40 hex digits (v1) or 64 (v2), this has {len(text)}"
        )
    raise MetainfoError(
        shorten(text), "not a magnet, .torrent file, http(s) URL or 40/64-hex info-hash"
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        return False


def _magnet_info(uri: str) -> TorrentInfo:
    """What a magnet says, parsed by libtorrent (btih, btmh or both)."""
    try:
        atp = lt.parse_magnet_uri(uri)
        hashes = atp.info_hashes
        v1 = str(hashes.v1) if hashes.has_v1() else None
        v2 = str(hashes.v2) if hashes.has_v2() else None
        name = atp.name
        trackers = _tiers(atp.trackers, atp.tracker_tiers)
        web_seeds = [u for u in atp.url_seeds if u]
    except RuntimeError as exc:
        raise MetainfoError(shorten(uri), f"malformed magnet link: {_lt_text(exc)}") from exc
    except (ValueError, TypeError) as exc:  # UnicodeError: a dn= that is not UTF-8
        raise MetainfoError(shorten(uri), f"malformed magnet link: {exc}") from exc
    if v1 is None and v2 is None:
        raise MetainfoError(
            shorten(uri), "malformed magnet link: no xt=urn:btih: or xt=urn:btmh: info-hash"
        )
    return TorrentInfo(
        name=name,
        infohash=v1 or v2 or "",
        magnet=uri,
        trackers=trackers,
        web_seeds=web_seeds,
        has_metadata=False,
        size=_magnet_length(uri),
        infohash_v2=v2,
        version="hybrid" if v1 and v2 else "v2" if v2 else "v1",
    )


def _lt_text(exc: RuntimeError) -> str:
    # "expected colon in bencoded string [bdecode:5]": the code means nothing to a user
    return re.sub(r"\s*\[[\w ]+:-?\d+\]$", "", str(exc)) or type(exc).__name__


def _magnet_length(uri: str) -> int:
    """The magnet's ``xl=`` (exact length) when it is a plain number, else 0."""
    for key, value in parse_qsl(uri.partition("?")[2]):
        if key == "xl" and re.fullmatch(r"[0-9]{1,19}", value):
            return int(value)
    return 0
