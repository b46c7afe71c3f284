"""The ready log: the contract between the sidecar and training.

``DATASET/.torrentds/ready.jsonl`` gets one JSON line per shard, appended and
fsynced only after the shard passed libtorrent's piece checks and its sha256
matched the manifest. Readers tail it (``consume``); a shard is never logged
twice. A fatal error of the downloader is reported beside it in
``.torrentds/error.json`` so readers stop waiting. This module imports only the
standard library and ``manifest``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from torrentds.errors import StorageError
from torrentds.manifest import ShardEntry, write_atomic

STATE_DIR = ".torrentds"
READY_LOG = "ready.jsonl"
ERROR_FILE = "error.json"


@dataclass(frozen=True)
class ReadyRecord:
    path: str
    split: str
    sha256: str
    samples: int
    bytes: int
    time: float


def ready_log_path(dataset_dir: Path) -> Path:
    return dataset_dir / STATE_DIR / READY_LOG


def read_ready(dataset_dir: Path) -> list[ReadyRecord]:
    """Every complete line of the ready log (a torn last line is ignored)."""
    path = ready_log_path(dataset_dir)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    out = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
            out.append(ReadyRecord(**doc))
        except (json.JSONDecodeError, TypeError):
            continue  # a line cut short by a crash
    return out


class ReadyLog:
    """Appends shards to the ready log, once each."""

    def __init__(self, dataset_dir: Path) -> None:
        self.path = ready_log_path(dataset_dir)
        self.logged = {r.path for r in read_ready(dataset_dir)}
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A crash mid-append leaves a line without "\n": end it, so the next
        record starts a line of its own instead of being glued to the torn one."""
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return
                fh.seek(size - 1)
                torn = fh.read(1) != b"\n"
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(self.path, f"cannot read: {exc.strerror or exc}") from exc
        if torn:
            self._write(b"\n")

    def append(self, shard: ShardEntry) -> ReadyRecord | None:
        """Log ``shard`` as ready; None if it was logged before."""
        if shard.path in self.logged:
            return None
        record = ReadyRecord(
            shard.path, shard.split, shard.sha256, shard.samples, shard.bytes, round(time.time(), 3)
        )
        line = json.dumps(asdict(record), sort_keys=True) + "\n"
        self._write(line.encode("utf-8"))
        self.logged.add(shard.path)
        return record

    def _write(self, data: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(self.path, f"cannot append: {exc.strerror or exc}") from exc


def error_path(dataset_dir: Path) -> Path:
    return dataset_dir / STATE_DIR / ERROR_FILE


def report_error(dataset_dir: Path, message: str) -> None:
    """Tell readers the downloader failed for good: ``.torrentds/error.json``,
    ``{"message", "time"}``, written atomically (temp file, fsync, rename)."""
    path = error_path(dataset_dir)
    doc = {"message": message, "time": round(time.time(), 3)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path.parent, f"cannot create: {exc.strerror or exc}") from exc
    write_atomic(path, (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8"))


def clear_error(dataset_dir: Path) -> None:
    """Remove a stale error report (a new download of the dataset is starting)."""
    path = error_path(dataset_dir)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(path, f"cannot remove: {exc.strerror or exc}") from exc


def read_error(dataset_dir: Path) -> str | None:
    """The message of the downloader's error report, or None if there is none."""
    path = error_path(dataset_dir)
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return text.strip() or "error report without a message"
    message = doc.get("message") if isinstance(doc, dict) else None
    return message if isinstance(message, str) else text.strip()
