"""Resume data, and the verified shards that wait for it before they are logged.

A verified shard must survive a crash: it is logged ready only once resume
data that holds its pieces is on disk, so a rerun after ``kill -9`` never
fetches a shard the log calls ready. ``unsaved`` shards wait for the next
save; ``saving`` holds one batch per save in flight (libtorrent answers them
in order).
"""

from __future__ import annotations

from pathlib import Path

from torrentds.dataset.manifest import ShardEntry
from torrentds.errors import StorageError
from torrentds.statedir import write_atomic

Verified = tuple[ShardEntry, str]  # the entry and the sha256 read from disk


class ResumeLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.unsaved: list[Verified] = []
        self.saving: list[list[Verified]] = []

    @property
    def in_flight(self) -> bool:
        return bool(self.saving)

    def verified(self, entry: ShardEntry, digest: str) -> None:
        self.unsaved.append((entry, digest))

    def request(self, force: bool = False) -> bool:
        """True if a save should be asked for now (none in flight, or ``force``)."""
        if self.saving and not force:
            return False
        self.saving.append(self.unsaved)
        self.unsaved = []
        return True

    def answered(self, data: bytes | None) -> list[Verified]:
        """Write the oldest save's data (None: it failed); its shards may be logged."""
        batch = self.saving.pop(0) if self.saving else []
        if data is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(self.path.parent, f"cannot create: {exc.strerror}") from exc
            write_atomic(self.path, data)
        return batch

    @property
    def waiting(self) -> bool:
        """Shards verified since the last save asked for, and no save in flight."""
        return bool(self.unsaved) and not self.saving


def read_resume(path: Path) -> bytes | None:
    """Resume data of an earlier run, if any."""
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError as exc:
        raise StorageError(path, f"cannot read: {exc.strerror or exc}") from exc
