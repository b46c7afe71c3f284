"""A client of a running sidecar's API (``torrentds status``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import requests

from torrentds.errors import TorrentdsError


def fetch(url: str, path: str, token: str | None, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``path`` from a running sidecar's API (``torrentds status``)."""
    base = (url if "://" in url else f"http://{url}").rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment has no business with loopback
        try:
            resp = session.get(base + path, headers=headers, timeout=timeout)
        except requests.ConnectionError as exc:
            raise TorrentdsError(base, "sidecar not reachable (connection refused?)") from exc
        except requests.RequestException as exc:
            raise TorrentdsError(base, f"sidecar not reachable: {exc}") from exc
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if resp.status_code != HTTPStatus.OK:
        detail = doc.get("detail") if isinstance(doc, dict) else resp.reason
        hint = " (--api-token or TORRENTDS_API_TOKEN)" if resp.status_code == 401 else ""
        raise TorrentdsError(base + path, f"HTTP {resp.status_code}: {detail}{hint}")
    if not isinstance(doc, dict):
        raise TorrentdsError(base + path, "answer is not a JSON object (not a torrentds API?)")
    return doc
