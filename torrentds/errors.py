"""The one error tree: every error names the path or value it is about.

Errors print as ``subject: reason`` (one line) and carry the exit code the CLI
uses, so no caller needs to know which module raised them.
"""

from __future__ import annotations

import os


class TorrentdsError(Exception):
    """Base error: ``subject`` is the offending path or value."""

    exit_code = 1

    def __init__(self, subject: str | os.PathLike[str], reason: str) -> None:
        self.subject = os.fspath(subject)
        self.reason = reason
        super().__init__(f"{self.subject}: {reason}")

    def __str__(self) -> str:
        # One line, whatever the reason text held.
        return f"{self.subject}: {self.reason}".replace("\n", " ")


class UsageError(TorrentdsError):
    """A command-line value that cannot be used (exit 2, like click's own)."""

    exit_code = 2


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
