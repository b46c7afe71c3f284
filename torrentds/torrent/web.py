"""The torrent layer's HTTP: .torrent files fetched by URL and web seeds
probed; requests' exceptions become ``FetchError``/``MetainfoError`` in words."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from torrentds.errors import FetchError, MetainfoError, shorten

HTTP_TIMEOUT = 30.0


def check_http_url(url: str) -> None:
    """Refuse, as bad input, a URL no request could be sent to (``http://``, ``ftp://x``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise MetainfoError(shorten(url), f"not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise MetainfoError(shorten(url), "not an http:// or https:// URL")
    if not host:
        raise MetainfoError(shorten(url), "not a valid URL: no host name")


def request_failure(exc: Exception) -> str:
    """Why a request failed, in words rather than a class name."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (host unreachable, refused or unknown)"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return "not a URL that can be fetched"
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return "the answer was cut off or garbled"
    return "request failed"


def fetch_torrent(url: str, max_bytes: int) -> bytes:
    """Download a .torrent over http(s); refuses HTML and error pages."""
    check_http_url(url)
    try:
        resp = requests.get(url, timeout=HTTP_TIMEOUT, stream=True)
        resp.raise_for_status()
        data = resp.raw.read(max_bytes + 1, decode_content=True)
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise FetchError(url, f"HTTP {code}") from exc
    except (requests.RequestException, OSError) as exc:
        raise FetchError(url, f"cannot fetch: {request_failure(exc)}") from exc
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
        return f"{target}: web seed did not answer ({request_failure(exc)})"
    if resp.status_code != 206:
        return f"{target}: web seed answered HTTP {resp.status_code} to a Range request, not 206"
    return None
