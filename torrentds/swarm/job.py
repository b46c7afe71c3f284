"""One dataset's download-and-seed job on an ``Engine``: ``get`` and ``seed``.

The job turns libtorrent's piece events into verified shards: when every piece
of a shard has passed libtorrent's check, the cache is flushed, the shard's
sha256 is read back from disk and compared with the manifest, and only then is
it logged as ready. A shard that fails is re-checked and fetched again, never
handed on. After completion the job seeds for as long as asked (torrentds, not
libtorrent, enforces the limits). Its phase (``phase.Phase``) says where it
is; blocking waits (a resume save before the job ends) belong to the runner.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from torrentds.dataset import manifest
from torrentds.dataset.manifest import Manifest, ShardEntry
from torrentds.errors import StorageError, TorrentdsError
from torrentds.options import JobOptions
from torrentds.statedir import resume_file
from torrentds.swarm import events as ev
from torrentds.swarm import order, placement, recovery, report, verifier
from torrentds.swarm.deadlines import DeadlineFeeder
from torrentds.swarm.events import Emit, JobResult
from torrentds.swarm.membership import Membership
from torrentds.swarm.phase import Phase, move
from torrentds.swarm.priorities import STALL_SECONDS, PriorityPlan
from torrentds.swarm.resume import ResumeLedger
from torrentds.swarm.seeding import SeedClock
from torrentds.swarm.shards import ShardBook, foreign_shards, load_checked
from torrentds.torrent import alerts
from torrentds.torrent import engine as eng
from torrentds.torrent.layout import FileEntry
from torrentds.training import handoff

WEB_SEED_SAMPLE_SECONDS = 0.1
COMPLETING_SECONDS = 8.0  # at most this long for the flush and resume save of completion


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
        self.engine, self.spec, self.opts, self.emit = engine, spec, opts, emit
        self.ref = engine.add(spec)
        self.name = known_name
        self.phase = Phase.METADATA
        now = time.monotonic()
        self.started_at = self.last_progress = self.last_resume = self.last_connect = now
        self.clock = SeedClock(opts.seed_hours, opts.seed_ratio)
        self.place: handoff.Place | None = None
        self.presence: handoff.Presence | None = None
        self.ready_log: handoff.ReadyLog | None = None
        self.book = ShardBook()
        self.plan = PriorityPlan(opts.ordering, seeding_only=opts.seeding_only)
        self.deadlines = DeadlineFeeder()
        self.members = Membership(engine.peer_id) if opts.ordering.from_swarm else None
        self.manifest: Manifest | None = None
        self.manifest_index: int | None = None
        self.files: list[FileEntry] = []  # the real files (no pads), known with the metadata
        self.order: list[int] = []
        self.order_of: dict[int, int] = {}
        self.order_of_path: dict[str, int] = {}
        self.flushes = verifier.Flushes()
        self.completing_since = 0.0
        self.completing_flushes = 0
        self.hash_failures = 0
        self.warnings: list[str] = []
        self.resume = ResumeLedger(resume_file(spec.save_path, self.ref.infohash))
        self.restart_pending = False
        self.web_seeds = recovery.WebSeedRetry(opts.reconnect_interval, set(self.ref.web_seeds()))
        self.stall = recovery.StallWatch(now)
        self.web_seed_bytes = recovery.WebSeedCounter()
        self.total_size = 0

    # -- what others read ---------------------------------------------------------
    @property
    def completed(self) -> bool:
        return self.phase in (Phase.COMPLETING, Phase.SEEDING)

    @property
    def dataset_dir(self) -> Path | None:
        return self.place.dataset if self.place is not None else None

    def peer_index(self) -> str | None:
        """This peer's index and where it came from (the swarm's deal as it is now)."""
        return self.opts.ordering.peer_index(self.plan.slice)

    def _go(self, to: Phase) -> None:
        self.phase = move(self.phase, to)

    # -- lifecycle: start, handle events, tick, finish --------------------------
    def start(self) -> None:
        """Announce the job and pick up metadata that is already known."""
        self.emit(
            ev.Started(
                self.ref.infohash,
                self.name,
                self.engine.listen_port(),
                self.peer_index(),
            )
        )
        if self.ref.has_metadata():
            self._on_metadata()

    def tick(self, now: float) -> bool:
        """Periodic work; True once the seeding limits are reached (the job is done)."""
        if not self.completed and now - self.plan.slice_checked_at >= 1.0:
            # The alert puts a lost slice back at once; this catches anything else.
            self.plan.slice_checked_at = now
            self._redeal(now)
            self.plan.hold_slice(self.ref)
        if now - self.last_progress >= self.opts.progress_interval:
            self.last_progress = now
            self._apply_priorities()  # releases held shards after a stall
            self.web_seed_bytes.sample(now, self.ref.web_seed_totals())
            self._recover(now)
            self.emit(report.progress(self))
        if not self.completed and now - self.last_resume >= self.opts.resume_interval:
            self.last_resume = now
            self._request_resume()
        if now - self.last_connect >= self.opts.reconnect_interval:
            self.last_connect = now
            for peer in self.opts.peers:
                self.ref.connect_peer(peer)
        if self.flushes.due(now, bool(self.book.candidates)):
            self.flushes.asked(now)
            self.ref.flush()
        if self.phase is Phase.DOWNLOADING and self._is_complete():
            self._begin_completing(now)
        if self.phase is Phase.COMPLETING:
            self._end_completing(now)
        if self.clock.reached(now, self.ref.status().uploaded, self.total_size):
            return True
        timeout = self.opts.timeout
        if not self.completed and timeout is not None and now - self.started_at > timeout:
            st = self.ref.status()
            raise TorrentdsError(
                self.name or self.ref.infohash,
                f"gave up after {timeout:g} s at {st.progress:.0%} with {st.peers} peers",
            )
        return False

    def needs_resume_save(self, stopped: bool) -> bool:
        """Whether the runner should save resume data before the job ends."""
        return not self.completed or stopped

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
        return report.status_row(self)

    def shard_states(self) -> list[dict[str, Any]]:
        """Each shard: pending, downloading, verifying, ready or failed."""
        return self.book.states()

    def result(self, stopped: bool = False) -> JobResult:
        return report.result(self, stopped)

    # -- recovery -------------------------------------------------------------------
    def _recover(self, now: float) -> None:
        """Put back dropped web seeds; restart a torrent libtorrent left stuck
        (``recovery`` says when and why)."""
        if self.completed:
            return
        for url in self.web_seeds.due(now, self.ref.web_seeds(), len(self.book.have)):
            self.ref.readd_web_seed(url)
            self._warn(f"web seed {url} was dropped after a failed piece; trying it again")
        if self.opts.seeding_only or self.place is None or self.restart_pending:
            return
        self.stall.data(now, self.ref.status().total_done)
        why = self.stall.restart_reason(now, self.ref.unchecked_pieces())
        if why is not None:
            self._warn(f"{why}: restarting the torrent from its resume data")
            self.restart_pending = True  # done once the save asked for here is written
            self._request_resume(force=True)

    def _restart(self) -> None:
        """Re-add the torrent from the resume data just written: libtorrent
        forgets bans and partial pieces and keeps every verified piece."""
        self.restart_pending = False
        if not self.resume.path.is_file():
            return
        spec = recovery.restart_spec(
            self.spec,
            self.resume.path.read_bytes(),
            self.web_seeds.known,
            self.plan.sent_file_priorities(),
        )
        self.engine.remove(self.ref)
        self.ref = self.engine.add(spec)
        self.deadlines = DeadlineFeeder()
        self._apply_priorities()
        self.plan.hold_slice(self.ref)  # the new handle has no piece priorities yet
        self.web_seed_bytes.forget_connections()
        self.web_seeds.retried.clear()
        self.stall.restarted(time.monotonic())

    # -- completion and seeding ---------------------------------------------------
    def _is_complete(self) -> bool:
        if not all(s.ready for s in self.book.wanted(self.opts.ordering)):
            return False
        st = self.ref.status()
        return st.is_seeding or (st.total_wanted > 0 and st.total_done == st.total_wanted)

    def _begin_completing(self, now: float) -> None:
        """Flush so "completed" means on disk, then persist resume data."""
        self._go(Phase.COMPLETING)
        self.completing_since, self.completing_flushes = now, self.flushes.seen
        self.ref.flush()
        self._request_resume(force=True)

    def _end_completing(self, now: float) -> None:
        settled = self.flushes.seen > self.completing_flushes and not self.resume.in_flight
        if not settled and now - self.completing_since < COMPLETING_SECONDS:
            return
        self._go(Phase.SEEDING)
        st = self.ref.status()
        starting = not self.clock.running
        if starting:  # before "completed" is told: a reader then sees the time left
            self.clock.start(time.monotonic(), st.uploaded)
        shards = len(self.book.shards)
        self.emit(ev.Completed(st.downloaded, st.uploaded, shards, str(self.dataset_dir)))
        if starting:
            self._announce_seeding()

    def _start_seeding(self) -> None:
        """Start the clock of --seed-hours and --seed-ratio."""
        self.clock.start(time.monotonic(), self.ref.status().uploaded)
        self._announce_seeding()

    def _announce_seeding(self) -> None:
        now, uploaded = time.monotonic(), self.ref.status().uploaded
        if not self.clock.reached(now, uploaded, self.total_size):  # else the next tick ends it
            self.emit(ev.Seeding(self.clock.finite_hours(), self.opts.seed_ratio))

    # -- events -----------------------------------------------------------------
    def handle(self, event: alerts.Event) -> None:
        """One engine event for this torrent."""
        if isinstance(event, alerts.PieceFinished):
            self._on_piece(event.piece)
        elif isinstance(event, alerts.MetadataReceived):
            self._on_metadata()
        elif isinstance(event, alerts.HashFailed):
            self.hash_failures += 1
            # From a peer's bad data, or (seed mode) our own disk copy changed.
            self._warn(f"piece {event.piece} failed its hash check; it will be fetched again")
        elif isinstance(event, alerts.PeerBanned):
            self.stall.banned = True
            self._warn(f"peer {event.peer} banned for sending corrupt data")
        elif isinstance(event, alerts.FilePrioritiesApplied):
            if not self.completed:
                self.plan.hold_slice(self.ref)
        elif isinstance(event, alerts.TorrentChecked | alerts.TorrentFinished):
            self._rescan()
            if isinstance(event, alerts.TorrentChecked) and self.opts.seeding_only:
                self._warn_if_damaged()
        elif isinstance(event, alerts.CacheFlushed):
            self._on_flushed()
        elif isinstance(event, alerts.ResumeData | alerts.ResumeFailed):
            if isinstance(event, alerts.ResumeFailed):
                self._warn(f"could not save resume data: {event.message}")
            self._on_resume(event.data if isinstance(event, alerts.ResumeData) else None)
        elif isinstance(event, alerts.TorrentFailed):
            raise StorageError(event.path or self.name or self.ref.infohash, event.message)
        elif isinstance(event, alerts.TrackerFailed):
            self._warn(f"tracker {event.url}: {event.message}", quiet=True)

    def _warn(self, text: str, quiet: bool = False) -> None:
        if not quiet:
            self.warnings.append(text)
        self.emit(ev.Warned(text))

    def _on_piece(self, piece: int) -> None:
        now = time.monotonic()
        self.plan.piece_passed(self.book, piece, now)
        self.stall.data(now)
        if self.deadlines.passed(piece):
            self._top_up_deadlines()
        if now - self.web_seed_bytes.sampled_at >= WEB_SEED_SAMPLE_SECONDS:
            # While pieces arrive: a web seed's connection (and its byte count)
            # goes away once the torrent is complete.
            self.web_seed_bytes.sample(now, self.ref.web_seed_totals())
        self.book.passed(piece, now)
        if self.phase is Phase.MANIFEST:
            self._try_manifest()

    # -- metadata and the manifest ---------------------------------------------
    def _on_metadata(self) -> None:
        if self.phase is not Phase.METADATA:
            return
        files = self.files = placement.real_files(self.ref)  # fixed from now on
        self.name = self.ref.name()
        # A .torrent given at the start was checked before it was added.
        place = placement.prepare(self.ref, self.spec, self.opts.layout_checked)
        self.place = place  # only now may error reports be written there
        self.total_size = sum(f.size for f in files)
        handoff.clear_error(place.dataset, place.state)  # an earlier run's report is stale
        self.presence = handoff.Presence(place.state)
        placement.keep_torrent_copy(place.state, self.ref)
        self.ready_log = handoff.ReadyLog(place.dataset, self.ref.infohash, place.state)
        single = self.ref.single_file()
        self.manifest_index = next(
            (i for i, f in enumerate(files) if f.path == manifest.MANIFEST_NAME and not single),
            None,
        )
        pieces, size = self.ref.num_pieces(), self.ref.piece_size()
        has_manifest = self.manifest_index is not None
        self.emit(ev.Metadata(self.name, self.total_size, len(files), pieces, size, has_manifest))
        self.book.have = {i for i, h in enumerate(self.ref.status(with_pieces=True).pieces) if h}
        if self.manifest_index is None:
            self._go(Phase.DOWNLOADING)
            self._warn(
                "no torrentds.json in this torrent: each .tar is checked by its pieces "
                "only, with no sha256 to compare"
            )
            self._track(foreign_shards(files))
            if not self.book.shards:  # no .tar at all: fetch everything as it comes
                self.plan.set_file_priorities(self.ref, [order.NORMAL] * len(files), files)
        else:
            self._go(Phase.MANIFEST)
            # Nothing but the manifest until it is here: it says what every shard
            # must be, and requests queued before it would ignore this peer's order.
            if not self.opts.seeding_only:
                prio = [order.SKIP] * len(files)
                prio[self.manifest_index] = order.TOP
                self.plan.set_file_priorities(self.ref, prio, files)
            self._try_manifest()

    def _try_manifest(self) -> None:
        if self.phase is not Phase.MANIFEST or self.manifest_index is None:
            return
        assert self.place is not None
        files = self.files
        entry = files[self.manifest_index]
        if not all(p in self.book.have for p in entry.pieces(self.ref.piece_size())):
            return
        if not (self.opts.seeding_only or self.flushes.manifest_flushed):
            self.flushes.manifest_wanted = True  # read it only after a flush puts it on disk
            return
        self.manifest = load_checked(self.place.dataset, files, self.ref.piece_size())
        self._go(Phase.DOWNLOADING)
        self._track(self.manifest.shards)

    def _track(self, entries: list[ShardEntry]) -> None:
        assert self.place is not None and self.ready_log is not None
        self.book.track(entries, self.place.root, self.files, self.ref.piece_size())
        for shard in self.book.shards:
            if shard.entry.path in self.ready_log.logged and not shard.left:
                shard.ready = True  # verified by an earlier run, whose pieces libtorrent kept
        handoff.write_current(
            self.place.state,
            self.ref.infohash,
            self.ref.single_file(),
            [(s.entry.path, s.entry.split, s.entry.sha256) for s in self.book.shards],
        )
        self.order = order.download_order([s.entry for s in self.book.shards], self.opts.ordering)
        self.order_of = {k: r for r, k in enumerate(self.order)}  # shard index -> place in order
        self.order_of_path = {self.book.shards[i].entry.path: r for i, r in self.order_of.items()}
        self.plan.follow(self.book)
        self._apply_priorities()
        self._rescan()

    def _apply_priorities(self) -> None:
        """File priorities: the manifest first, then the window of this peer's order;
        the window's pieces also get deadlines, in order."""
        if self.phase in (Phase.METADATA, Phase.MANIFEST):
            return  # the manifest alone is wanted until it is read
        if not self.book.shards and self.manifest is None:
            return  # a foreign torrent with no .tar keeps its plain priorities
        held = self.plan.fallback
        window = self.plan.apply(self.ref, self.book, self.order, self.files, self.manifest_index)
        if self.plan.fallback and not held and self.plan.slice is not None:
            part = self.plan.slice
            self._warn(
                f"the window has not moved for {STALL_SECONDS:g} s (peer {part.index} of "
                f"{part.count}): fetching the other peers' part of it too",
                quiet=True,
            )
        # Shards whose pieces were queued already are not queued again (DeadlineFeeder).
        unqueued = [i for i in window if i not in self.deadlines.queued_shards]
        fresh = sorted(unqueued, key=self.order_of.__getitem__)
        slice_ = self.plan.slice
        if slice_ is not None:
            # Deadlines only on this peer's own part: a time-critical piece is asked
            # of any peer, the origin included, and the others' parts come from them.
            owners = self.plan.owners(self.ref)
            queued = [
                (i, [p for p in self.book.shards[i].pieces if owners[p] == slice_.index])
                for i in fresh
            ]
        else:
            queued = [(i, list(self.book.shards[i].pieces)) for i in fresh]
        if self.deadlines.queue(queued):
            self._top_up_deadlines()

    def _redeal(self, now: float) -> None:
        """With no index given: this peer's part as the swarm's membership now deals it."""
        if self.members is None:
            return
        self.members.see(self.ref.peers(), now)
        if self.plan.redeal(self.members.deal()):
            # Deadlines on what is now another peer's part would send us to the origin for it.
            self.ref.clear_deadlines()
            self.deadlines = DeadlineFeeder()
            self._apply_priorities()

    def _top_up_deadlines(self) -> None:
        batch, start = self.deadlines.top_up(self.book.have)
        if batch:
            self.ref.set_deadlines(batch, start=start)

    # -- verification -------------------------------------------------------------
    def _rescan(self) -> None:
        pieces = self.ref.status(with_pieces=True).pieces
        have = {i for i, h in enumerate(pieces) if h} if pieces else None
        if self.phase is Phase.MANIFEST:
            if have is not None:
                self.book.have = have
            self._try_manifest()
        self.book.rescan(have)

    def _warn_if_damaged(self) -> None:
        """A seed's check found pieces that do not match: say which files, then
        seed the rest (peers that hold those pieces can still mend the folder)."""
        damage = placement.damage(self.ref, self.book.have)  # ``_rescan`` just read them
        if damage is None:
            return
        self._warn(
            f"{self.dataset_dir}: {damage}; seeding the rest, the others only if a peer has them"
        )
        if not self.clock.running:
            self._start_seeding()  # such a folder may never be complete: count from now

    def _on_flushed(self) -> None:
        ours, manifest_on_disk = self.flushes.reported()
        if not ours:
            return
        if manifest_on_disk:
            self._try_manifest()
        # Shards that completed together are logged in this peer's order.
        passed, recheck = verifier.verify(self.book, self.order_of_path, self._warn)
        for entry, digest in passed:
            self.resume.verified(entry, digest)
        if passed:  # once per batch: each pass is linear in the shard count
            self._request_resume()
            self._apply_priorities()
        if recheck:
            self.book.rescan(set())
            self.book.candidates.clear()
            self.ref.force_recheck()

    # -- resume data ------------------------------------------------------------
    def request_resume(self) -> None:
        """Ask for resume data now, even with a save in flight (the runner's wait)."""
        self._request_resume(force=True)

    def _request_resume(self, force: bool = False) -> None:
        if self.resume.request(force):
            self.ref.save_resume()

    def _on_resume(self, data: bytes | None) -> None:
        """The oldest save is answered: write it, then log the shards it holds."""
        held = self.resume.answered(data)
        if held:
            assert self.ready_log is not None
            digests = {entry.path: digest for entry, digest in held}
            now = time.monotonic()
            for r in self.ready_log.append_all([entry for entry, _ in held]):
                shard = self.book.by_path.get(r.path)
                came = shard.last_piece_at if shard is not None else None
                lag = round(now - came, 3) if came is not None else None
                self.emit(ev.ShardReady(r.path, r.split, r.samples, r.bytes, digests[r.path], lag))
        if self.resume.waiting:
            self._request_resume()
        if self.restart_pending and not self.resume.in_flight:
            self._restart()
