"""One reader's view of a dataset folder: the ready log tailed line by line
against what should become ready (``current.json`` or the manifest), with the
downloader's failure or absence noticed. Standard library only."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from torrentds.dataset import manifest, nodes
from torrentds.errors import ManifestError, NotReadyError, SidecarError, StorageError, UsageError
from torrentds.training import handoff

# How long no downloader may hold the dataset's lock before readers give up
# (a restarting sidecar takes a moment to lock it again).
ABSENT_GRACE = 5.0


@dataclass(frozen=True)
class ReadyStatus:
    """What is ready in one split of a dataset folder, at one moment."""

    folder: str
    split: str
    ready: list[str]  # shard paths relative to ``root``, in the order they became ready
    total: int | None  # the split's shards per the manifest (None: manifest not read yet)
    missing: list[str]  # shard paths not ready yet, in manifest order
    root: str = ""  # ``folder``, or a single-file torrent's folder (its parent)
    shards: tuple[str, ...] = ()  # every shard of the split, in manifest order (once known)

    @property
    def paths(self) -> list[str]:
        """``ready`` as paths on disk."""
        return [str(Path(self.root or self.folder) / p) for p in self.ready]


def no_split(split: str, splits: Iterable[str]) -> str:
    return f"no split {split!r} in the manifest (it has {', '.join(splits) or 'none'})"


class Tail:
    """Reads complete new lines of the ready log: a torn last line waits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.inode: int | None = None

    def read(self) -> list[handoff.ReadyRecord]:
        """New complete records."""
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_ino != self.inode or st.st_size < self.offset:
                    self.inode, self.offset = st.st_ino, 0  # a new or truncated log
                if st.st_size == self.offset:
                    return []
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(self.path, f"cannot read: {exc.strerror or exc}") from exc
        end = data.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            record = handoff.parse_record(line)  # None: the remains of a torn line
            if record is not None:
                out.append(record)
        return out


class Watch:
    """One reader's view of a dataset: what should become ready, what is.

    What should: ``current.json`` (the torrent now in the folder and its
    shards) when the downloader wrote one, else the manifest. What is: the
    ready log's lines for that torrent. Older lines name no torrent and count
    when their sha256 is the one expected.
    """

    def __init__(self, folder: Path, split: str, rank: int = 0, world_size: int = 1) -> None:
        self.folder = folder
        self.split = split
        self.rank = rank
        self.world_size = world_size
        self.place = handoff.place_of(folder)
        self.tail = Tail(self.place.state / handoff.READY_LOG)
        self.records: list[handoff.ReadyRecord] = []
        self.used = 0  # records already matched against the manifest
        self.infohash: str | None = None  # the torrent in the folder, when known
        self.expected: dict[str, str] = {}  # this reader's shard path -> sha256 ("" unknown)
        self.wanted: list[str] | None = None  # this reader's shards, in manifest order
        self.order: list[str] = []  # this reader's ready shards, in ready order
        self.seen: set[str] = set()  # the same, as a set
        self.waiting_for = "the dataset folder to appear"
        self.absent_since: float | None = None  # no downloader holds the lock since

    @property
    def done(self) -> bool:
        return self.wanted is not None and len(self.order) == len(self.wanted)

    def poll(self) -> None:
        if self.wanted is None:
            place = handoff.place_of(self.folder)
            if place != self.place:  # a single-file torrent's state appeared
                self.place = place
                self.tail = Tail(place.state / handoff.READY_LOG)
                self.records, self.used = [], 0
        if not self.folder.exists() and not self.place.state.is_dir():
            self.waiting_for = "the dataset folder to appear"
            return
        if self.place.root == self.folder and not self.folder.is_dir():
            raise StorageError(self.folder, "not a folder")
        self.records += self.tail.read()
        if self.wanted is None and not self._load_wanted():
            return
        for record in self.records[self.used :]:
            path = record.path
            if path in self.seen or path not in self.expected:
                continue
            if record.infohash:
                ok = self.infohash is None or record.infohash == self.infohash
                ok = ok and (not self.expected[path] or record.sha256 == self.expected[path])
            else:
                # A line for another sha256 is from another version of the dataset.
                ok = bool(self.expected[path]) and record.sha256 == self.expected[path]
            if ok:
                self.seen.add(path)
                self.order.append(path)
        self.used = len(self.records)

    def _load_wanted(self) -> bool:
        current = handoff.read_current(self.place.state)
        if current is not None:
            self.infohash = current.infohash
            shards = [(p, h) for p, split, h in current.shards if split == self.split]
            if not shards:
                where = self.folder / manifest.MANIFEST_NAME
                raise UsageError(
                    where if where.is_file() else self.folder,
                    no_split(self.split, sorted({split for _, split, _ in current.shards})),
                )
            self._want(shards)
            return True
        where = self.folder / manifest.MANIFEST_NAME
        if not self.records:
            if not where.exists():
                refuse_download_root(self.folder)
                self.waiting_for = f"{manifest.MANIFEST_NAME} and the first verified shard"
            else:
                self.waiting_for = "the first verified shard (the ready log is empty)"
            return False
        try:
            doc = manifest.load(self.folder)
        except ManifestError as exc:
            if not where.exists():
                raise ManifestError(
                    where,
                    "missing although shards are logged as ready; reading shards as "
                    "they arrive needs a dataset made by `torrentds create`",
                ) from exc
            self.waiting_for = f"a readable manifest ({exc.reason})"
            return False
        entries = doc.shards_of(self.split)
        if not entries:
            raise UsageError(where, no_split(self.split, doc.splits))
        self._want([(s.path, s.sha256) for s in entries])
        return True

    def _want(self, shards: list[tuple[str, str]]) -> None:
        mine = nodes.share(shards, self.rank, self.world_size)
        self.expected = dict(mine)
        self.wanted = [p for p, _ in mine]

    def status(self) -> ReadyStatus:
        return ReadyStatus(
            folder=str(self.folder),
            split=self.split,
            ready=list(self.order),
            total=None if self.wanted is None else len(self.wanted),
            missing=[p for p in self.wanted or () if p not in self.seen],
            root=str(self.place.root),
            shards=tuple(self.wanted or ()),
        )

    def raise_if_failed(self) -> None:
        message = handoff.read_error(self.folder, self.place.state)
        if message is not None:
            raise SidecarError(self.folder, f"the download failed: {message}")
        running = handoff.downloader_running(self.place.state)
        if running is not False:
            self.absent_since = None
            return
        now = time.monotonic()
        if self.absent_since is None:
            self.absent_since = now
        elif now - self.absent_since >= ABSENT_GRACE:
            got = f"{len(self.order)} of {len(self.wanted)}" if self.wanted is not None else "no"
            raise SidecarError(
                self.folder,
                f"no torrentds process is fetching this dataset any more and {got} "
                f"{self.split} shards are ready; run `torrentds get` again to finish it",
            )

    def timeout_error(self, timeout: float) -> NotReadyError:
        head = f"timed out after {timeout:g} s"
        if self.wanted is None:
            return NotReadyError(self.folder, f"{head} waiting for {self.waiting_for}")
        share = "" if self.world_size == 1 else f" (rank {self.rank} of {self.world_size})"
        missing = self.status().missing
        shown = ", ".join(missing[:3]) + (
            f", … ({len(missing) - 3} more)" if len(missing) > 3 else ""
        )
        return NotReadyError(
            self.folder,
            f"{head}: {len(self.order)} of {len(self.wanted)} {self.split} shards"
            f"{share} ready; missing {shown}",
        )


def refuse_download_root(folder: Path) -> None:
    """``get -d DIR`` puts the dataset in DIR/NAME: point there instead of waiting forever."""
    inside = sorted(p.parent for p in folder.glob(f"*/{manifest.MANIFEST_NAME}"))
    if inside:
        raise UsageError(
            folder, f"not a dataset folder (no {manifest.MANIFEST_NAME}); did you mean {inside[0]}?"
        )
