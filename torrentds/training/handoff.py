"""The ready log: the contract between the sidecar and training.

``STATE/ready.jsonl`` gets one JSON line per shard, appended and fsynced only
after the shard passed libtorrent's piece checks and its sha256 matched the
manifest; each line names the torrent (info-hash) it was verified for. Readers
tail it (``consume``); a shard is never logged twice for one torrent.
``STATE/current.json`` names the torrent now in the folder and the shards it
will make ready, so readers skip the lines of an earlier version of the
dataset. A fatal error of the downloader is reported in ``STATE/error.json``,
and the downloader holds an flock on ``STATE/lock`` while it runs, so readers
stop waiting even when the error report cannot be written (a full disk, a
crash).

STATE is ``DATASET/.torrentds`` for a folder dataset. A single-file torrent's
DIR/NAME is the file itself, so its state lives in ``DIR/.torrentds/files/NAME``
(as does the state of a torrent that ships a ``.torrentds`` folder of its own).
This module imports only the standard library and ``manifest``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from torrentds.dataset.manifest import ShardEntry
from torrentds.errors import StorageError
from torrentds.statedir import EXTERNAL_DIR, STATE_DIR, write_atomic

READY_LOG = "ready.jsonl"
ERROR_FILE = "error.json"
CURRENT_FILE = "current.json"
LOCK_FILE = "lock"


@dataclass(frozen=True)
class Place:
    """Where a dataset's files and torrentds' state for it are.

    ``dataset`` is DIR/NAME as users name it (a folder, or a single-file
    torrent's file); ready-log paths are relative to ``root``.
    """

    dataset: Path
    state: Path
    root: Path

    @classmethod
    def of(cls, dataset: Path, single_file: bool = False, external: bool = False) -> Place:
        """The place a downloader uses for a torrent of this kind."""
        if single_file or external:
            state = dataset.parent / STATE_DIR / EXTERNAL_DIR / dataset.name
        else:
            state = dataset / STATE_DIR
        return cls(dataset, state, dataset.parent if single_file else dataset)


def place_of(dataset: Path) -> Place:
    """The place a reader finds: state kept outside DIR/NAME if there is any."""
    outside = Place.of(dataset, external=True)
    if outside.state.is_dir():  # DIR/NAME/.torrentds may then be the torrent's own
        current = read_current(outside.state)
        single = current.single_file if current is not None else not dataset.is_dir()
        return Place.of(dataset, single_file=single, external=True)
    return Place.of(dataset)


@dataclass(frozen=True)
class ReadyRecord:
    path: str
    split: str
    sha256: str
    samples: int
    bytes: int
    time: float
    infohash: str = ""  # empty in lines written before torrents were named


def ready_log_path(dataset_dir: Path) -> Path:
    return place_of(dataset_dir).state / READY_LOG


def parse_record(line: bytes) -> ReadyRecord | None:
    """One ready-log line, or None for a torn or foreign line."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):  # also bad UTF-8 and huge numbers
        return None
    if not isinstance(doc, dict):
        return None
    path, split, sha = doc.get("path"), doc.get("split", ""), doc.get("sha256", "")
    infohash = doc.get("infohash", "")
    if not all(isinstance(x, str) for x in (path, split, sha, infohash)) or not path:
        return None
    numbers = [doc.get("samples", 0), doc.get("bytes", 0), doc.get("time", 0.0)]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
        return None
    return ReadyRecord(
        path, split, sha, int(numbers[0]), int(numbers[1]), float(numbers[2]), infohash
    )


def read_records(log: Path) -> list[ReadyRecord]:
    """Every complete, well-formed line of the ready log at ``log``."""
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(log, f"cannot read: {exc.strerror or exc}") from exc
    out = []
    for line in data.splitlines():
        record = parse_record(line)
        if record is not None:
            out.append(record)
    return out


def read_ready(dataset_dir: Path) -> list[ReadyRecord]:
    """Every complete line of the dataset's ready log (a torn last line is ignored)."""
    return read_records(ready_log_path(dataset_dir))


class ReadyLog:
    """Appends shards verified for torrent ``infohash`` to the ready log, once each."""

    def __init__(self, dataset_dir: Path, infohash: str = "", state: Path | None = None) -> None:
        self.path = (state or place_of(dataset_dir).state) / READY_LOG
        self.infohash = infohash
        # A line of another torrent (an earlier version of the dataset) does not count.
        self.logged = {r.path for r in read_records(self.path) if r.infohash == infohash}
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
        records = self.append_all([shard])
        return records[0] if records else None

    def append_all(self, shards: Sequence[ShardEntry]) -> list[ReadyRecord]:
        """Log ``shards`` as ready, in order, with one write and one fsync (a batch
        that completed together); returns the records of those not logged before."""
        now = round(time.time(), 3)
        records: list[ReadyRecord] = []
        batch: set[str] = set()
        for shard in shards:
            if shard.path in self.logged or shard.path in batch:
                continue
            batch.add(shard.path)
            records.append(
                ReadyRecord(
                    shard.path,
                    shard.split,
                    shard.sha256,
                    shard.samples,
                    shard.bytes,
                    now,
                    self.infohash,
                )
            )
        if records:
            lines = "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in records)
            self._write(lines.encode("utf-8"))
            self.logged.update(r.path for r in records)
        return records

    def _write(self, data: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:  # a short write (a disk filling up) must not lose lines
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(self.path, f"cannot append: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Current:
    """The torrent now in a dataset folder and the shards it makes ready."""

    infohash: str
    single_file: bool
    shards: list[tuple[str, str, str]]  # (path, split, sha256 or "")


def write_current(
    state: Path, infohash: str, single_file: bool, shards: Sequence[tuple[str, str, str]]
) -> None:
    doc = {
        "infohash": infohash,
        "single_file": single_file,
        "shards": [{"path": p, "split": s, "sha256": h} for p, s, h in shards],
    }
    write_atomic(state / CURRENT_FILE, (json.dumps(doc, sort_keys=True) + "\n").encode())


def read_current(state: Path) -> Current | None:
    """``current.json``, or None while there is none (or it is unreadable)."""
    try:
        doc = json.loads((state / CURRENT_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("infohash"), str):
        return None
    shards = []
    for raw in doc.get("shards") or []:
        if not isinstance(raw, dict):
            return None
        values = (raw.get("path"), raw.get("split"), raw.get("sha256"))
        if not all(isinstance(v, str) for v in values):
            return None
        shards.append((str(values[0]), str(values[1]), str(values[2])))
    return Current(doc["infohash"], bool(doc.get("single_file")), shards)


class Presence:
    """An flock on ``STATE/lock`` held while a downloader works on the dataset.

    The kernel drops it when the process dies, however it dies, so readers
    learn that nobody will make more shards ready without any file having to
    be written at that moment (a full disk, kill -9).
    """

    def __init__(self, state: Path) -> None:
        self.path = state / LOCK_FILE
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        except OSError as exc:
            raise StorageError(self.path, f"cannot lock: {exc.strerror or exc}") from exc

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the lock
            self._fd = None


def downloader_running(state: Path) -> bool | None:
    """True while a downloader holds the lock, False once none does, None if
    no downloader ever ran here."""
    try:
        fd = os.open(state / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        return True  # cannot tell: keep waiting, as before locks existed
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def report_error(dataset_dir: Path, message: str, state: Path | None = None) -> None:
    """Tell readers the downloader failed for good: ``STATE/error.json``,
    ``{"message", "time"}``, written atomically (temp file, fsync, rename)."""
    path = (state or place_of(dataset_dir).state) / ERROR_FILE
    doc = {"message": message, "time": round(time.time(), 3)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path.parent, f"cannot create: {exc.strerror or exc}") from exc
    write_atomic(path, (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8"))


def clear_error(dataset_dir: Path, state: Path | None = None) -> None:
    """Remove a stale error report (a new download of the dataset is starting)."""
    path = (state or place_of(dataset_dir).state) / ERROR_FILE
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(path, f"cannot remove: {exc.strerror or exc}") from exc


def read_error(dataset_dir: Path, state: Path | None = None) -> str | None:
    """The message of the downloader's error report, or None if there is none."""
    path = (state or place_of(dataset_dir).state) / ERROR_FILE
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return text.strip()[:500] or "error report without a message"
    message = doc.get("message") if isinstance(doc, dict) else None
    return message if isinstance(message, str) else text.strip()[:500]
