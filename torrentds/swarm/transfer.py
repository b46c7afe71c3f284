"""One dataset's download-and-seed job on an ``Engine``: ``get`` and ``seed``.

The job turns libtorrent's piece events into verified shards: when every piece
of a shard has passed libtorrent's check, the cache is flushed, the shard's
sha256 is read back from disk and compared with the manifest, and only then is
it logged as ready. A shard that fails is re-checked and fetched again, never
handed on. After completion the job seeds for as long as asked (torrentds, not
libtorrent, enforces the limits) and returns a summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torrentds.dataset import hashing, manifest
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import ManifestError, MetainfoError, StorageError, TorrentdsError
from torrentds.swarm import events as ev
from torrentds.swarm import order
from torrentds.swarm.events import Emit, JobResult
from torrentds.torrent import engine as eng
from torrentds.training import handoff

STATE_DIR = ".torrentds"
MAX_SHARD_FAILURES = 3
STALL_SECONDS = 10.0
# Pieces of the window marked time-critical at once (see ``_top_up_deadlines``).
MAX_DEADLINES = 64
# No piece for this long, with a ban or an unchecked piece: restart the torrent.
STALL_RESTART_SECONDS = 20.0
WEB_SEED_SAMPLE_SECONDS = 0.1


@dataclass(frozen=True)
class JobOptions:
    save_path: Path  # the folder that receives NAME/
    seed_hours: float = 0.0
    seed_ratio: float | None = None
    peers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    timeout: float | None = None
    progress_interval: float = 2.0
    resume_interval: float = 30.0
    reconnect_interval: float = 10.0
    seeding_only: bool = False  # ``seed``: the data is expected to be complete
    skip_check: bool = False
    ordering: order.Ordering = field(default_factory=order.Ordering)


@dataclass
class _Shard:
    entry: ShardEntry
    file_path: Path
    pieces: range
    ready: bool = False
    failures: int = 0
    left: int = 0  # pieces not yet passed: a counter, so a piece costs O(1) and not O(shard)


class Job:
    """Runs one torrent to completion (and seeding) on an engine."""

    def __init__(
        self,
        engine: eng.Engine,
        spec: eng.AddSpec,
        opts: JobOptions,
        emit: Emit,
        known_name: str = "",
    ) -> None:
        self.engine = engine
        self.opts = opts
        self.emit = emit
        self.spec = spec
        # Delivers engine events to every job; the Runner replaces it.
        self.pump: Callable[[float], None] = self._pump_alone
        self.started_at = self.last_progress = self.last_resume = self.last_connect = 0.0
        self.seeding_since: float | None = None
        self.base_up = 0
        self.flushes_seen = 0
        self.web_seed_bytes = 0
        self._web_seen: dict[str, int] = {}
        self._web_sampled = 0.0
        self.ref = engine.add(spec)
        # Every web seed ever listed; a dropped one's last re-add (time, delay, pieces).
        self.web_seeds: set[str] = set(self.ref.web_seeds())
        self.web_seed_retry: dict[str, tuple[float, float, int]] = {}
        self.name = known_name
        self.dataset_dir: Path | None = None
        self.place: handoff.Place | None = None
        self.presence: handoff.Presence | None = None
        self.shards: list[_Shard] = []
        self.by_piece: dict[int, list[_Shard]] = {}
        self.manifest: Manifest | None = None
        self.manifest_index: int | None = None
        self.have: set[int] = set()
        self.candidates: set[str] = set()
        self.flush_pending = False
        self.flush_at = 0.0
        self.manifest_wanted = False
        self.manifest_flushed = False
        self.finished = False
        self.completed = False
        self.ready_log: handoff.ReadyLog | None = None
        self.hash_failures = 0
        self.warnings: list[str] = []
        self.resume_path = resume_file(spec.save_path, self.ref.infohash)
        # Verified shards are logged only once resume data holding their pieces is
        # on disk: ``unsaved`` wait for the next save, ``saving`` holds one batch
        # per save in flight (libtorrent answers them in order).
        self.unsaved: list[tuple[ShardEntry, str]] = []
        self.saving: list[list[tuple[ShardEntry, str]]] = []
        self.total_size = 0
        self.order: list[int] = []
        self.deadlined: set[int] = set()  # shards whose pieces were queued for deadlines
        # Piece deadlines: the window's pieces in order, handed to libtorrent a
        # few at a time (a deadline per piece of a 150 GB shard would block the
        # loop for minutes); ``deadline_out`` are set and not yet passed.
        self.deadline_queue: list[int] = []
        self.deadline_pos = 0
        self.deadline_out: set[int] = set()
        self.deadline_step = 0
        self.last_own_progress = time.monotonic()
        self.own_set: set[int] = set()
        self.file_priorities: list[int] = []
        self.slice_priorities: list[int] = []  # per piece, with --slice
        self.slice_checked_at = 0.0
        # Stall recovery (``_restart_if_stalled``): when the last piece passed (or
        # the most bytes yet were on disk), whether a peer was banned since the
        # last (re)start, the next wait.
        self.last_new_data_at = time.monotonic()
        self.banned_since_start = False
        self.restart_after = STALL_RESTART_SECONDS
        self.best_done = 0

    # -- lifecycle: start, handle events, tick, finish --------------------------
    def start(self) -> None:
        """Announce the job and pick up metadata that is already known."""
        self.started_at = time.monotonic()
        self.last_progress = self.last_resume = self.last_connect = self.started_at
        self.emit(ev.Started(self.ref.infohash, self.name, self.engine.listen_port()))
        if self.ref.has_metadata():
            self._on_metadata()

    def handle(self, event: eng.Event) -> None:
        """One engine event for this torrent."""
        self._handle(event)

    def tick(self, now: float) -> bool:
        """Periodic work; True once seeding limits are reached (the job is done)."""
        # The alert puts a lost slice back at once; this catches anything else
        # (a recheck, a missed alert) without reading every priority on each wake-up.
        if not self.completed and now - self.slice_checked_at >= 1.0:
            self.slice_checked_at = now
            self._hold_slice()
        if now - self.last_progress >= self.opts.progress_interval:
            self.last_progress = now
            self._apply_priorities()  # releases held shards after a stall
            self._count_web_seed_bytes()
            self._restore_web_seeds(now)
            self._restart_if_stalled(now)
            self._progress(self.seeding_since)
        if not self.completed and now - self.last_resume >= self.opts.resume_interval:
            self.last_resume = now
            self._request_resume()
        if now - self.last_connect >= self.opts.reconnect_interval:
            self.last_connect = now
            for peer in self.opts.peers:
                self.ref.connect_peer(peer)
        if self.flush_pending and now - self.flush_at > 30:
            # A flush that never reports back: ask again rather than hang.
            self.flush_pending = False
        if (self.candidates or self.manifest_wanted) and not self.flush_pending:
            self._flush()
        if not self.completed and self._is_complete():
            self._complete()
            if self.seeding_since is None:
                self._start_seeding()
        if self.seeding_since is not None:
            up = self.ref.status().uploaded - self.base_up
            if self._seed_limit_reached(now - self.seeding_since, up):
                return True
        if (
            not self.completed
            and self.opts.timeout is not None
            and now - self.started_at > self.opts.timeout
        ):
            self._save_resume_blocking()
            st = self.ref.status()
            raise TorrentdsError(
                self.name or self.ref.infohash,
                f"gave up after {self.opts.timeout:g} s at {st.progress:.0%} with {st.peers} peers",
            )
        return False

    def finish(self, stopped: bool) -> JobResult:
        """Save resume data if needed and summarise the run."""
        try:
            if not self.completed or stopped:
                self._save_resume_blocking()
            return self.result(stopped)
        finally:
            self.release()

    def release(self) -> None:
        """Readers learn that this job no longer makes shards ready."""
        if self.presence is not None:
            self.presence.release()
            self.presence = None

    def report_error(self, message: str) -> None:
        """``error.json`` for readers waiting on a failed get (not for a seeder's
        complete folder); a failure to write it is left to the lock's release."""
        if self.place is not None and not self.opts.seeding_only:
            with contextlib.suppress(TorrentdsError):
                handoff.report_error(self.place.dataset, message, self.place.state)

    def snapshot(self) -> dict[str, Any]:
        """What ``status`` shows for this torrent (plain, JSON-ready)."""
        st = self.ref.status()
        since = self.seeding_since
        left = None
        if since is not None and math.isfinite(self.opts.seed_hours):
            left = round(max(self.opts.seed_hours * 3600 - (time.monotonic() - since), 0.0), 1)
        wanted = self._wanted()
        return {
            "name": self.name,
            "infohash": self.ref.infohash,
            "state": "seeding" if self.completed else st.state,
            "progress": round(st.progress, 4),
            "down_rate": st.download_rate,
            "up_rate": st.upload_rate,
            "peers": st.peers,
            "shards_ready": sum(s.ready for s in wanted),
            "shards_total": len(wanted),
            "seeding_left": left,
            "seconds_seeded": round(time.monotonic() - since, 1) if since is not None else 0.0,
            "downloaded": st.downloaded,
            "uploaded": st.uploaded,
            "web_seed_bytes": self.web_seed_bytes,
            "hash_failures": self.hash_failures,
            "dataset_dir": str(self.dataset_dir or ""),
        }

    def shard_states(self) -> list[dict[str, Any]]:
        """Each shard: pending, downloading, verifying, ready or failed."""
        out = []
        for shard in self.shards:
            if shard.ready:
                state = "ready"
            elif shard.entry.path in self.candidates:
                state = "verifying"
            elif shard.failures:
                state = "failed"
            elif shard.left < len(shard.pieces):
                state = "downloading"
            else:
                state = "pending"
            out.append(
                {
                    "path": shard.entry.path,
                    "split": shard.entry.split,
                    "state": state,
                    "bytes": shard.entry.bytes,
                    "samples": shard.entry.samples,
                }
            )
        return out

    def _restore_web_seeds(self, now: float) -> None:
        """Put back the web seeds libtorrent dropped.

        libtorrent bans a web seed, and drops it for good, when it alone is
        blamed for a failed piece; that includes a piece whose other blocks came
        from a lying peer it had banned already, so a good web seed goes too and
        a download with no other source stalls. A dropped seed is put back at
        once, then every ``reconnect_interval`` while pieces keep arriving, with
        a doubling delay (up to 10 min) while none do. Bytes from a web seed that
        really is wrong cost a request each time and are never accepted.
        """
        if self.completed:
            return
        listed = set(self.ref.web_seeds())
        self.web_seeds |= listed
        have, base = len(self.have), self.opts.reconnect_interval
        for url in sorted(self.web_seeds - listed):
            last, delay, had = self.web_seed_retry.get(url, (-math.inf, base, -1))
            moving = have > had
            if now - last < (base if moving else delay):
                continue
            self.ref.readd_web_seed(url)
            self.web_seed_retry[url] = (now, base if moving else min(delay * 2, 600.0), have)
            self._warn(f"web seed {url} was dropped after a failed piece; trying it again")

    def _restart_if_stalled(self, now: float) -> None:
        """Re-add the torrent from its resume data when libtorrent is stuck.

        Two ways libtorrent stops for good although a good source is there:
        it bans a good peer whose blocks shared pieces with a liar's (each
        failed piece costs every contributor trust, and a ban lasts as long as
        the torrent); or it leaves a piece whose blocks are all on disk
        unchecked, so nobody asks for it again. Removing and re-adding the
        torrent forgets bans and partial pieces and keeps every verified one.
        Only after ``restart_after`` seconds without a piece or a new block, and
        only with one of those two signs; the wait doubles after each restart
        (up to 10 min).
        """
        if self.completed or self.opts.seeding_only or self.dataset_dir is None:
            return
        done = self.ref.status().total_done  # counts blocks of partial pieces too
        if done > self.best_done:
            # Blocks still arriving: large pieces on a slow link are not a stall.
            self.best_done = done
            self.last_new_data_at = now
        if now - self.last_new_data_at < self.restart_after:
            return
        stuck = self.ref.unchecked_pieces()
        if not (self.banned_since_start or stuck):
            return
        why = f"piece {stuck[0]} never checked" if stuck else "a peer was banned"
        self._warn(
            f"no new data in {now - self.last_new_data_at:.0f} s ({why}): restarting the "
            "torrent from its resume data"
        )
        self._save_resume_blocking()
        if not self.resume_path.is_file():
            return
        data = self.resume_path.read_bytes()
        self.engine.remove(self.ref)
        spec = dataclasses.replace(
            self.spec,
            torrent=None,
            magnet=None,
            resume=data,
            drop_partial=True,
            trackers=(),  # the resume data lists them
            web_seeds=tuple(sorted(self.web_seeds)),
            file_priorities=tuple(self.file_priorities) or None,
            hold_files=False,
        )
        self.ref = self.engine.add(spec)
        self._reset_deadlines()
        self._apply_priorities()
        self._web_seen = {}
        self.web_seed_retry.clear()
        self.banned_since_start = False
        self.best_done = 0  # partial pieces were dropped: count from here
        self.last_new_data_at = time.monotonic()
        self.restart_after = min(self.restart_after * 2, 600.0)

    def _count_web_seed_bytes(self) -> None:
        """Accumulate bytes from web seeds across reconnects (a counter for metrics).

        Sampled, so approximate: what a web seed sent after the last sample
        before its connection closed is not counted.
        """
        self._web_sampled = time.monotonic()
        now = self.ref.web_seed_totals()
        for key, total in now.items():
            before = self._web_seen.get(key, 0)
            self.web_seed_bytes += total - before if total >= before else total
        self._web_seen = now

    def result(self, stopped: bool = False) -> JobResult:
        st = self.ref.status()
        since = self.seeding_since
        seeded = time.monotonic() - since if since is not None else 0.0
        size = self.total_size or st.total_wanted or 1
        return JobResult(
            infohash=self.ref.infohash,
            name=self.name,
            dataset_dir=str(self.dataset_dir or ""),
            downloaded=st.downloaded,
            uploaded=st.uploaded,
            ratio=round(st.uploaded / size, 3),
            seconds_seeded=round(seeded, 1),
            shards_ready=sum(s.ready for s in self.shards),
            shards_total=len(self._wanted()),
            stopped=stopped,
            hash_failures=self.hash_failures,
            warnings=self.warnings,
        )

    def _start_seeding(self) -> None:
        """Start the clock of --seed-hours and --seed-ratio."""
        self.seeding_since = time.monotonic()
        self.base_up = self.ref.status().uploaded
        if not self._seed_limit_reached(0.0, 0):  # else the next check ends the job
            self.emit(ev.Seeding(_finite(self.opts.seed_hours), self.opts.seed_ratio))

    def _seed_limit_reached(self, seconds: float, uploaded: int) -> bool:
        if seconds >= self.opts.seed_hours * 3600:
            return True
        ratio = self.opts.seed_ratio
        return ratio is not None and uploaded >= ratio * max(self.total_size, 1)

    # -- events -----------------------------------------------------------------
    def _handle(self, event: eng.Event) -> None:
        if event.infohash != self.ref.infohash and not isinstance(event, eng.SessionFailed):
            return
        if isinstance(event, eng.MetadataReceived):
            self._on_metadata()
        elif isinstance(event, eng.PieceFinished):
            if any(id(s) in self.own_set for s in self.by_piece.get(event.piece, ())):
                self.last_own_progress = time.monotonic()
            self._add_have(event.piece)
            self.last_new_data_at = time.monotonic()
            if event.piece in self.deadline_out:
                self.deadline_out.discard(event.piece)
                self._top_up_deadlines()
            if time.monotonic() - self._web_sampled >= WEB_SEED_SAMPLE_SECONDS:
                # While pieces arrive: a web seed's connection (and its byte
                # count) goes away once the torrent is complete.
                self._count_web_seed_bytes()
            self._check_piece(event.piece)
        elif isinstance(event, eng.HashFailed):
            self.hash_failures += 1
            # From a peer's bad data, or (seed mode) our own disk copy changed.
            self._warn(f"piece {event.piece} failed its hash check; it will be fetched again")
        elif isinstance(event, eng.PeerBanned):
            self.banned_since_start = True
            self._warn(f"peer {event.peer} banned for sending corrupt data")
        elif isinstance(event, eng.FilePrioritiesApplied):
            if not self.completed:
                self._hold_slice()
        elif isinstance(event, eng.TorrentChecked):
            self._rescan()
            if self.opts.seeding_only:
                self._warn_if_damaged()
        elif isinstance(event, eng.TorrentFinished):
            self.finished = True
            self._rescan()
        elif isinstance(event, eng.CacheFlushed):
            self.flushes_seen += 1
            self._on_flushed()
        elif isinstance(event, eng.ResumeData):
            self._write_resume(event.data)
        elif isinstance(event, eng.ResumeFailed):
            self._warn(f"could not save resume data: {event.message}")
            self._write_resume(None)
        elif isinstance(event, eng.TorrentFailed):
            self._save_resume_blocking()
            raise StorageError(event.path or self.name or self.ref.infohash, event.message)
        elif isinstance(event, eng.SessionFailed):
            raise TorrentdsError(self.spec.save_path, event.message)
        elif isinstance(event, eng.TrackerFailed):
            self._warn(f"tracker {event.url}: {event.message}", quiet=True)

    def _warn(self, text: str, quiet: bool = False) -> None:
        if not quiet:
            self.warnings.append(text)
        self.emit(ev.Warned(text))

    # -- metadata and the manifest ---------------------------------------------
    def _on_metadata(self) -> None:
        if self.dataset_dir is not None:
            return
        for path, _ in self.ref.files():
            # libtorrent sanitises names from peers; refuse anything that could
            # still leave the download folder rather than trust that alone.
            parts = path.split("/")
            if path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts):
                raise MetainfoError(path, "unsafe file name in the torrent's metadata")
        files = self._files()
        self.name = self.ref.name()
        single = self.ref.single_file()
        dataset = self.spec.save_path / (self.spec.root_name or self.name)
        # Our state must not collide with the torrent's own files: a single
        # file, or a torrent that ships a .torrentds folder, keeps it outside.
        external = single or any(f.path.split("/")[0] == STATE_DIR for f in files)
        place = handoff.Place.of(dataset, single_file=single, external=external)
        self._prepare_folders(place, single)
        self.place = place  # only now may error reports be written there
        self.dataset_dir = dataset
        self.total_size = sum(f.size for f in files)
        state = self.place.state
        handoff.clear_error(dataset, state)  # a report from an earlier run is stale now
        self.presence = handoff.Presence(state)
        copy = state / "dataset.torrent"
        data = self.ref.torrent_bytes()
        if not copy.is_file() or _torrent_of(copy) != self.ref.infohash:
            # A new version of the dataset: verify checks against what is here now.
            manifest.write_atomic(copy, data)
        self.ready_log = handoff.ReadyLog(dataset, self.ref.infohash, state)
        self.manifest_index = next(
            (i for i, f in enumerate(files) if f.path == manifest.MANIFEST_NAME and not single),
            None,
        )
        self.emit(
            ev.Metadata(
                name=self.name,
                bytes=self.total_size,
                files=len(files),
                pieces=self.ref.num_pieces(),
                piece_size=self.ref.piece_size(),
                manifest=self.manifest_index is not None,
            )
        )
        st = self.ref.status(with_pieces=True)
        self.have = {i for i, h in enumerate(st.pieces) if h}
        if self.manifest_index is None:
            self._warn(
                "no torrentds.json in this torrent: each .tar is checked by its pieces "
                "only, with no sha256 to compare"
            )
            self._track(
                [
                    ShardEntry(f.path, _split_of(f.path), f.size, "", 0)
                    for f in files
                    if f.path.endswith(".tar") and f.size > 0
                ],
                files,
            )
            if not self.shards:  # no .tar at all: fetch everything as it comes
                self._set_file_priorities([order.NORMAL] * len(files))
        else:
            # Nothing but the manifest until it is here: it says what every shard
            # must be, and requests queued before it would ignore this peer's order.
            if not self.opts.seeding_only:
                prio = [order.SKIP] * len(files)
                prio[self.manifest_index] = order.TOP
                self._set_file_priorities(prio)
            self._try_manifest()

    def _prepare_folders(self, place: handoff.Place, single: bool) -> None:
        """Create the state folder, refusing in one line what is in the way."""
        dataset = place.dataset
        check_inside(self.spec.save_path, [f.path for f in self.ref.file_entries()])
        if single:
            if dataset.is_dir():
                raise StorageError(
                    dataset, "is a folder, but this torrent is a single file of that name"
                )
        elif dataset.exists() and not dataset.is_dir():
            raise StorageError(dataset, "is a file, but this torrent is a folder of that name")
        try:
            place.state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                exc.filename or place.state, f"cannot create: {exc.strerror or exc}"
            ) from exc

    def _try_manifest(self) -> None:
        if self.manifest is not None or self.manifest_index is None or self.dataset_dir is None:
            return
        files = self._files()
        entry = files[self.manifest_index]
        if not all(p in self.have for p in entry.pieces(self.ref.piece_size())):
            return
        if not (self.opts.seeding_only or self.manifest_flushed):
            self.manifest_wanted = True  # read it only after a flush puts it on disk
            return
        self.manifest = _load_checked(self.dataset_dir, files, self.ref.piece_size())
        self._track(self.manifest.shards, files)

    def _track(self, entries: list[ShardEntry], files: list[eng.FileEntry]) -> None:
        assert self.place is not None
        by_path = {f.path: f for f in files}
        piece_size = self.ref.piece_size()
        for entry in entries:
            shard = _Shard(
                entry, self.place.root / entry.path, by_path[entry.path].pieces(piece_size)
            )
            self.shards.append(shard)
            for p in shard.pieces:
                self.by_piece.setdefault(p, []).append(shard)
        self._count_left()
        assert self.ready_log is not None
        for shard in self.shards:
            if shard.entry.path in self.ready_log.logged and not shard.left:
                shard.ready = True  # verified by an earlier run, whose pieces libtorrent kept
        handoff.write_current(
            self.place.state,
            self.ref.infohash,
            self.ref.single_file(),
            [(s.entry.path, s.entry.split, s.entry.sha256) for s in self.shards],
        )
        self.order = order.download_order([s.entry for s in self.shards], self.opts.ordering)
        self.own_set = {id(s) for s in self._wanted(own_only=True)}
        self._apply_priorities()
        self._rescan()

    def _apply_priorities(self) -> None:
        """File priorities: manifest first, then the window of this peer's order."""
        if self.opts.seeding_only or (not self.shards and self.manifest is None):
            return  # a foreign torrent with no .tar keeps its plain priorities
        entries = [s.entry for s in self.shards]
        wanted_mine = self._wanted(own_only=True)
        # A ranked node holds other shards back while its own keep arriving; if
        # they stall for STALL_SECONDS, the rest flows again so the swarm moves.
        hold = (
            bool(wanted_mine)
            and not all(s.ready for s in wanted_mine)
            and (time.monotonic() - self.last_own_progress < STALL_SECONDS)
        )
        shard_prio = order.priorities(
            entries, self.order, [s.ready for s in self.shards], self.opts.ordering, hold
        )
        by_path = {s.entry.path: p for s, p in zip(self.shards, shard_prio, strict=True)}
        prio = [by_path.get(f.path, order.NORMAL) for f in self._files()]
        if self.manifest_index is not None:
            prio[self.manifest_index] = order.TOP
        if prio != self.file_priorities:
            self._set_file_priorities(prio)
        # The window's pieces also get deadlines, in order: libtorrent requests
        # time-critical pieces first, so the head of the order really comes first.
        window = [i for i, p in enumerate(shard_prio) if p == order.TOP]
        fresh = [i for i in window if i not in self.deadlined]
        if fresh:
            self.deadlined.update(fresh)
            rank = {i: k for k, i in enumerate(self.order)}
            self.deadline_queue = self.deadline_queue[self.deadline_pos :] + [
                p for i in sorted(fresh, key=rank.__getitem__) for p in self.shards[i].pieces
            ]
            self.deadline_pos = 0
            self._top_up_deadlines()

    def _top_up_deadlines(self) -> None:
        """Keep MAX_DEADLINES pieces of the window time-critical, in order."""
        batch: list[int] = []
        while len(self.deadline_out) + len(batch) < MAX_DEADLINES and self.deadline_pos < len(
            self.deadline_queue
        ):
            piece = self.deadline_queue[self.deadline_pos]
            self.deadline_pos += 1
            if piece not in self.have and piece not in self.deadline_out:
                batch.append(piece)
        if batch:
            self.deadline_out.update(batch)
            self.ref.set_deadlines(batch, start=self.deadline_step)
            self.deadline_step += len(batch)

    def _reset_deadlines(self) -> None:
        self.deadlined.clear()
        self.deadline_queue, self.deadline_pos = [], 0
        self.deadline_out.clear()
        self.deadline_step = 0

    def _set_file_priorities(self, prio: list[int]) -> None:
        """File priorities; with --slice, the piece priorities they imply with this
        peer's slice on top."""
        self.file_priorities = prio
        self.ref.prioritize_files(prio)
        if self.opts.ordering.slice is None:
            return
        files = self._files()
        piece_size = self.ref.piece_size()
        base = [order.SKIP] * self.ref.num_pieces()
        for f, file_prio in zip(files, prio, strict=True):
            for p in f.pieces(piece_size):
                base[p] = max(base[p], file_prio)
        slice_ = self.opts.ordering.slice.for_piece_size(piece_size)
        self.slice_priorities = order.slice_priorities(base, slice_)
        self._hold_slice()

    def _hold_slice(self) -> None:
        # libtorrent applies file priorities later, on its disk thread, and that
        # resets piece priorities: put the slice back as soon as it is lost (the
        # alert), and every second in case an alert was missed. Until the alert is
        # handled a piece or two outside the slice may be started.
        if self.slice_priorities and self.ref.piece_priorities() != self.slice_priorities:
            self.ref.prioritize_pieces(self.slice_priorities)

    def _wanted(self, own_only: bool = False) -> list[_Shard]:
        """Shards this job must make ready (all, or only this node's with --only-mine).

        ``own_only``: this node's shards when it has a rank, else none.
        """
        o = self.opts.ordering
        if o.rank is None or not o.world_size:
            return [] if own_only else self.shards
        if not (o.only_mine or own_only):
            return self.shards
        own = order.mine([s.entry for s in self.shards], o.rank, o.world_size)
        return [s for i, s in enumerate(self.shards) if i in own]

    def _files(self) -> list[eng.FileEntry]:
        """The torrent's real files, paths relative to ``place.root`` (the dataset
        folder; a single-file torrent's folder), in torrent order."""
        if self.ref.single_file():
            return self.ref.file_entries()
        return [
            dataclasses.replace(f, path=f.path.split("/", 1)[-1]) for f in self.ref.file_entries()
        ]

    # -- shards -----------------------------------------------------------------
    def _complete_pieces(self, shard: _Shard) -> bool:
        return shard.left == 0

    def _add_have(self, piece: int) -> None:
        if piece in self.have:
            return
        self.have.add(piece)
        for shard in self.by_piece.get(piece, ()):
            shard.left -= 1

    def _count_left(self) -> None:
        for shard in self.shards:
            shard.left = sum(p not in self.have for p in shard.pieces)

    def _check_piece(self, piece: int) -> None:
        if self.manifest is None:
            self._try_manifest()
        for shard in self.by_piece.get(piece, ()):
            if not shard.ready and self._complete_pieces(shard):
                self.candidates.add(shard.entry.path)

    def _rescan(self) -> None:
        st = self.ref.status(with_pieces=True)
        if st.pieces:
            self.have = {i for i, h in enumerate(st.pieces) if h}
            self._count_left()
        if self.manifest is None:
            self._try_manifest()
        for shard in self.shards:
            if not shard.ready and self._complete_pieces(shard):
                self.candidates.add(shard.entry.path)

    def _warn_if_damaged(self) -> None:
        """A seed's check found pieces that do not match: say which files, then
        seed the rest (peers that hold those pieces can still mend the folder)."""
        pieces = self.ref.num_pieces()
        missing = set(range(pieces)) - self.have  # ``_rescan`` just read them
        size = self.ref.piece_size()
        if not missing or size <= 0:
            return
        damaged = [f.path for f in self._files() if not missing.isdisjoint(f.pieces(size))]
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        shown = ", ".join(damaged[:3]) + more
        self._warn(
            f"{self.dataset_dir}: {len(missing)} of {pieces} pieces fail the hash check"
            f" (in {shown}); seeding the rest, the others only if a peer has them"
        )
        if self.seeding_since is None:
            # Such a folder may never be complete; the seed limits count from now.
            self._start_seeding()

    def _flush(self) -> None:
        self.flush_pending = True
        self.flush_at = time.monotonic()
        self.ref.flush()

    def _on_flushed(self) -> None:
        if not self.flush_pending:
            return
        self.flush_pending = False
        if self.manifest_wanted:
            self.manifest_wanted = False
            self.manifest_flushed = True
            self._try_manifest()
        self._verify_candidates()

    def _verify_candidates(self) -> None:
        by_path = {s.entry.path: s for s in self.shards}
        recheck = False
        # Shards that completed together are logged in this peer's order.
        rank = {self.shards[i].entry.path: k for k, i in enumerate(self.order)}
        for path in sorted(self.candidates, key=lambda p: (rank.get(p, len(rank)), p)):
            shard = by_path[path]
            if shard.ready or not self._complete_pieces(shard):
                continue
            digest = hashing.sha256_file(shard.file_path, durable=True)
            expected = shard.entry.sha256
            if expected and digest != expected:
                shard.failures += 1
                self._warn(
                    f"{shard.file_path}: sha256 {digest[:12]}… does not match the "
                    f"manifest's {expected[:12]}…; re-checking and fetching it again"
                )
                if shard.failures >= MAX_SHARD_FAILURES:
                    raise ManifestError(
                        shard.file_path,
                        "sha256 keeps disagreeing with the "
                        "manifest although every piece passed; the manifest "
                        "does not describe this torrent's data",
                    )
                recheck = True
                continue
            entry = shard.entry if expected else _with_sha(shard.entry, digest)
            shard.ready = True
            # A verified shard must survive a crash: it is logged once resume
            # data that holds its pieces is on disk (``_write_resume``), so a
            # rerun after kill -9 never fetches a shard the log calls ready.
            self.unsaved.append((entry, digest))
            self._request_resume()
            self._apply_priorities()
        self.candidates.clear()
        if recheck:
            self.have.clear()
            self._count_left()
            self.ref.force_recheck()

    def _is_complete(self) -> bool:
        if self.dataset_dir is None or (self.manifest is None and self.manifest_index is not None):
            return False
        if not all(s.ready for s in self._wanted()):
            return False
        st = self.ref.status()
        return st.is_seeding or (st.total_wanted > 0 and st.total_done == st.total_wanted)

    def _complete(self) -> None:
        self.completed = True
        # Flush so "completed" means on disk, then persist resume data.
        self.ref.flush()
        self._save_resume_blocking(wait_flush=True)
        st = self.ref.status()
        self.emit(ev.Completed(st.downloaded, st.uploaded, len(self.shards), str(self.dataset_dir)))

    # -- resume data ------------------------------------------------------------
    def _request_resume(self, force: bool = False) -> None:
        """Ask for resume data unless a save is in flight (or ``force``)."""
        if force or not self.saving:
            self.saving.append(self.unsaved)
            self.unsaved = []
            self.ref.save_resume()

    def _write_resume(self, data: bytes | None) -> None:
        """Write the oldest save's data (None: it failed), then log its shards."""
        batch = self.saving.pop(0) if self.saving else []
        if data is not None:
            self.resume_path.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_atomic(self.resume_path, data)
        for entry, digest in batch:
            self._log_ready(entry, digest)
        if self.unsaved and not self.saving:
            self._request_resume()

    def _log_ready(self, entry: ShardEntry, digest: str) -> None:
        assert self.ready_log is not None
        if self.ready_log.append(entry) is not None:
            self.emit(ev.ShardReady(entry.path, entry.split, entry.samples, entry.bytes, digest))

    def _pump_alone(self, timeout: float) -> None:
        for event in self.engine.events(timeout):
            if event.infohash == self.ref.infohash:
                self._handle(event)

    def _save_resume_blocking(self, wait_flush: bool = False, timeout: float = 8.0) -> None:
        """Request resume data and pump events until it is written (bounded)."""
        self._request_resume(force=True)
        flushes = self.flushes_seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self.saving or (wait_flush and self.flushes_seen == flushes)
        ):
            self.pump(0.2)

    # -- progress ---------------------------------------------------------------
    def _progress(self, seeding_since: float | None) -> None:
        st = self.ref.status()
        remaining = st.total_wanted - st.total_done
        eta = remaining / st.download_rate if st.download_rate > 0 else None
        left = None
        if seeding_since is not None and math.isfinite(self.opts.seed_hours):
            left = round(
                max(self.opts.seed_hours * 3600 - (time.monotonic() - seeding_since), 0), 1
            )
        self.emit(
            ev.Progress(
                state=st.state,
                done=st.total_done,
                total=st.total_wanted,
                progress=round(st.progress, 4),
                down_rate=st.download_rate,
                up_rate=st.upload_rate,
                peers=st.peers,
                shards_ready=sum(s.ready for s in self.shards),
                shards_total=len(self._wanted()),
                eta=round(eta, 1) if eta is not None else None,
                downloaded=st.downloaded,
                uploaded=st.uploaded,
                seeding_left=left,
            )
        )


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _split_of(path: str) -> str:
    """A foreign torrent's .tar: its top folder is its split (``train/x.tar``),
    a .tar at the top is in split ``data``."""
    return path.split("/", 1)[0] if "/" in path else "data"


def _torrent_of(path: Path) -> str | None:
    """The info-hash of the .torrent copy kept in the state folder (None: unreadable)."""
    try:
        return eng.infohash_of(path.read_bytes())
    except (OSError, TorrentdsError):
        return None


def _with_sha(entry: ShardEntry, sha: str) -> ShardEntry:
    return ShardEntry(
        entry.path,
        entry.split,
        entry.bytes,
        sha,
        entry.samples,
        entry.first_piece,
        entry.last_piece,
    )


def _load_checked(dataset_dir: Path, files: list[eng.FileEntry], piece_size: int) -> Manifest:
    """The downloaded manifest, refused if it disagrees with the torrent."""
    doc = manifest.load(dataset_dir)
    where = dataset_dir / manifest.MANIFEST_NAME
    by_path = {f.path: f for f in files}
    for s in doc.shards:
        found = by_path.get(s.path)
        if found is None or found.size != s.bytes or s.bytes == 0:
            raise ManifestError(where, f"{s.path}: not in the torrent with {s.bytes} bytes")
        span = found.pieces(piece_size)
        if (span.start, span.stop - 1) != (s.first_piece, s.last_piece):
            raise ManifestError(
                where,
                f"{s.path}: piece range {s.first_piece}-{s.last_piece} "
                f"disagrees with the torrent ({span.start}-{span.stop - 1})",
            )
    if doc.piece_size != piece_size:
        raise ManifestError(where, f"piece_size {doc.piece_size} != torrent's {piece_size}")
    return doc


def check_inside(save_path: Path, paths: list[str]) -> None:
    """Refuse a torrent whose files would be written outside ``save_path``
    through a symlink already on disk (at DIR/NAME or any folder below it)."""
    root = os.path.realpath(save_path)
    steps = {"/".join(p.split("/")[: i + 1]) for p in paths for i in range(p.count("/") + 1)}
    for rel in sorted(steps, key=len):  # DIR/NAME first: a link there moves everything
        where = save_path / rel
        if not os.path.lexists(where):
            continue
        real = os.path.realpath(where)
        if real != root and not real.startswith(root + os.sep):
            raise StorageError(
                where, f"leads to {real}, outside {save_path}; refusing to write there"
            )


def resume_file(save_path: Path, infohash: str) -> Path:
    """Where a torrent's resume data is kept: ``DIR/.torrentds/resume/ID.resume``."""
    return save_path / STATE_DIR / "resume" / f"{infohash}.resume"


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and make sure we can write in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(folder, f"cannot create: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(folder, "folder is not writable")
