"""The ready log: the contract between the sidecar and training.

``DATASET/.torrentds/ready.jsonl`` gets one JSON line per shard, appended and
fsynced only after the shard passed libtorrent's piece checks and its sha256
matched the manifest. Readers tail it; a shard is never logged twice.
This module imports only the standard library and ``manifest``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from torrentds.errors import StorageError
from torrentds.manifest import ShardEntry

STATE_DIR = ".torrentds"
READY_LOG = "ready.jsonl"


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

    def append(self, shard: ShardEntry) -> ReadyRecord | None:
        """Log ``shard`` as ready; None if it was logged before."""
        if shard.path in self.logged:
            return None
        record = ReadyRecord(
            shard.path, shard.split, shard.sha256, shard.samples, shard.bytes, round(time.time(), 3)
        )
        line = json.dumps(asdict(record), sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(self.path, f"cannot append: {exc.strerror or exc}") from exc
        self.logged.add(shard.path)
        return record
