"""What a job tells its caller, as typed events; ``as_json`` is their one wire form.

``get --json`` prints ``as_json(event)`` per line, the sidecar logs it, and the
README's event table is checked against ``EVENTS`` by a test, so a field added
here without the table (or the other way round) fails the suite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torrentds.errors import TorrentdsError


@dataclass(frozen=True)
class JobResult:
    """How a job ended: what it moved and how long it seeded."""

    infohash: str
    name: str
    dataset_dir: str
    downloaded: int
    uploaded: int
    ratio: float
    seconds_seeded: float
    shards_ready: int
    shards_total: int
    stopped: bool = False
    hash_failures: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Started:
    kind: ClassVar[str] = "started"
    infohash: str
    name: str
    listen_port: int
    peer_index: str | None = None  # "2/6 from SLURM_NODEID/SLURM_NNODES" (None: no slice)


@dataclass(frozen=True)
class Metadata:
    kind: ClassVar[str] = "metadata"
    name: str
    bytes: int
    files: int
    pieces: int
    piece_size: int
    manifest: bool


@dataclass(frozen=True)
class ShardReady:
    kind: ClassVar[str] = "shard_ready"
    path: str
    split: str
    samples: int
    bytes: int
    sha256: str
    # Seconds from its last piece passing to its ready line (None: it was on disk
    # before this run): the flush, the sha256 and the resume save.
    lag: float | None = None


@dataclass(frozen=True)
class Progress:
    kind: ClassVar[str] = "progress"
    state: str
    done: int
    total: int
    progress: float
    down_rate: int
    up_rate: int
    peers: int
    shards_ready: int
    shards_total: int
    eta: float | None
    downloaded: int
    uploaded: int
    seeding_left: float | None = None  # left out of the JSON until seeding has a limit
    peer_index: str | None = None  # as in Started; the swarm's deal changes as peers come and go


@dataclass(frozen=True)
class Completed:
    kind: ClassVar[str] = "completed"
    downloaded: int
    uploaded: int
    shards: int
    dataset_dir: str


@dataclass(frozen=True)
class Seeding:
    kind: ClassVar[str] = "seeding"
    hours: float | None
    ratio: float | None


@dataclass(frozen=True)
class Warned:
    kind: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class Done:
    kind: ClassVar[str] = "done"
    result: JobResult


@dataclass(frozen=True)
class Failed:
    kind: ClassVar[str] = "error"
    error: TorrentdsError


JobEvent = Started | Metadata | ShardReady | Progress | Completed | Seeding | Warned | Done | Failed
Emit = Callable[[JobEvent], None]
EVENTS: tuple[type[JobEvent], ...] = (
    Started,
    Metadata,
    ShardReady,
    Progress,
    Completed,
    Seeding,
    Warned,
    Done,
    Failed,
)


def as_json(event: JobEvent) -> dict[str, Any]:
    """The event as one JSON object: ``{"event": KIND, field: value, ...}``."""
    if isinstance(event, Done):
        return {"event": event.kind, **dataclasses.asdict(event.result)}
    if isinstance(event, Failed):
        return {"event": event.kind, "message": str(event.error)}
    out: dict[str, Any] = {"event": event.kind, **dataclasses.asdict(event)}
    if isinstance(event, Progress) and event.seeding_left is None:
        del out["seeding_left"]
    return out


def json_fields(kind: type[JobEvent]) -> list[str]:
    """The JSON fields of one kind of event (what the README's table lists)."""
    if kind is Done:
        return [f.name for f in dataclasses.fields(JobResult)]
    if kind is Failed:
        return ["message"]
    return [f.name for f in dataclasses.fields(kind)]
