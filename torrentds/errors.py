"""The one error tree: every error names the path or value it is about.

Errors print as ``subject: reason`` (one line). ``exit_code_of`` and
``http_status_of`` read one table (``OUTCOMES``), so the CLI and the HTTP API
answer the same error the same way and no caller needs to know which module
raised it.
"""

from __future__ import annotations

import os
from http import HTTPStatus


class TorrentdsError(Exception):
    """Base error: ``subject`` is the offending path or value."""

    def __init__(self, subject: str | os.PathLike[str], reason: str) -> None:
        self.subject = os.fspath(subject)
        self.reason = reason
        super().__init__(f"{self.subject}: {reason}")

    def __str__(self) -> str:
        # One line, whatever the reason text held.
        return f"{self.subject}: {self.reason}".replace("\n", " ")


def shorten(text: str, limit: int = 100) -> str:
    """A long value (a 100 KB magnet) named by its start, not echoed whole."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UsageError(TorrentdsError):
    """A command-line (or config, or API) value that cannot be used."""


class InputError(TorrentdsError):
    """The dataset folder given to ``create`` cannot be packed as it is."""


class OutputExistsError(TorrentdsError):
    """An output path exists and ``--force`` was not given."""


class ShardError(TorrentdsError):
    """A tar shard cannot be read as a WebDataset shard."""


class ManifestError(TorrentdsError):
    """``torrentds.json`` is missing, malformed or disagrees with the data."""


class MetainfoError(TorrentdsError):
    """A .torrent, magnet link or info-hash is not valid."""


class FetchError(TorrentdsError):
    """Fetching a URL failed (HTTP error, not a torrent, unreachable)."""


class StorageError(TorrentdsError):
    """Reading or writing local files failed (disk full, permissions)."""


class NotReadyError(TorrentdsError):
    """Shards a reader waited for were not verified in time."""


class SidecarError(TorrentdsError):
    """The downloader reported a fatal error (``.torrentds/error.json``)."""


class ConfigError(TorrentdsError):
    """The sidecar's config file cannot be used."""


class NotFoundError(TorrentdsError):
    """No such torrent (or route) in the running sidecar."""


class ConflictError(TorrentdsError):
    """The torrent is already in the sidecar."""


class DuplicateTorrentError(ConflictError):
    """The torrent is already in this session."""


# Error class -> (exit code, HTTP status); the most specific class listed wins.
# Exit 2 is usage, as click's own; 1 is everything else.
OUTCOMES: dict[type[TorrentdsError], tuple[int, HTTPStatus]] = {
    TorrentdsError: (1, HTTPStatus.INTERNAL_SERVER_ERROR),
    UsageError: (2, HTTPStatus.BAD_REQUEST),
    ConfigError: (1, HTTPStatus.BAD_REQUEST),
    MetainfoError: (1, HTTPStatus.BAD_REQUEST),
    NotFoundError: (1, HTTPStatus.NOT_FOUND),
    ConflictError: (1, HTTPStatus.CONFLICT),
    FetchError: (1, HTTPStatus.BAD_GATEWAY),
}


def _outcome(exc: TorrentdsError) -> tuple[int, HTTPStatus]:
    for cls in type(exc).__mro__:
        if cls in OUTCOMES:
            return OUTCOMES[cls]
    return OUTCOMES[TorrentdsError]


def exit_code_of(exc: TorrentdsError) -> int:
    """The CLI's exit code for ``exc``."""
    return _outcome(exc)[0]


def http_status_of(exc: TorrentdsError) -> HTTPStatus:
    """The HTTP API's status for ``exc``."""
    return _outcome(exc)[1]
