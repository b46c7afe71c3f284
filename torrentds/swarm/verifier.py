"""Shards are read back from disk only after libtorrent flushed them, then
compared with the manifest's sha256; what passes is handed to resume data.

``Flushes`` says when to ask for a flush and what it was for (the manifest in
the MANIFEST phase, shards after). ``verify`` reads the candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from torrentds.dataset import hashing
from torrentds.errors import ManifestError
from torrentds.swarm.resume import Verified
from torrentds.swarm.shards import MAX_SHARD_FAILURES, ShardBook, with_sha

FLUSH_RETRY_SECONDS = 30.0
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify")


class Flushes:
    def __init__(self) -> None:
        self.pending = False  # asked for, not reported yet
        self.asked_at = 0.0
        self.seen = 0  # flushes reported so far
        # The manifest: wanted until a flush puts it on disk, then ``manifest_flushed``.
        self.manifest_wanted = self.manifest_flushed = False

    def due(self, now: float, candidates: bool) -> bool:
        """Whether to ask for a flush now (asks again if one never reported back)."""
        if self.pending and now - self.asked_at > FLUSH_RETRY_SECONDS:
            self.pending = False
        return (candidates or self.manifest_wanted) and not self.pending

    def asked(self, now: float) -> None:
        self.pending, self.asked_at = True, now

    def reported(self) -> tuple[bool, bool]:
        """A flush reported back: (it was ours, the manifest is now on disk)."""
        self.seen += 1
        if not self.pending:
            return False, False
        self.pending = False
        manifest = self.manifest_wanted
        if manifest:
            self.manifest_wanted, self.manifest_flushed = False, True
        return True, manifest


def verify(
    book: ShardBook, rank: dict[str, int], warn: Callable[[str], None]
) -> tuple[list[Verified], bool]:
    """Read each candidate's sha256 from disk, in ``rank`` order: the shards that
    match (or have no sha256 to match) are marked ready and returned; the
    second value says a recheck is needed. A shard that fails
    ``MAX_SHARD_FAILURES`` times ends the job: its pieces pass, so the manifest
    does not describe the torrent."""
    passed: list[Verified] = []
    recheck = False
    shards = book.take_candidates(rank)
    # fsync and sha256 release the GIL: a batch is read by several threads at once.
    digests = list(_READERS.map(lambda s: hashing.sha256_file(s.file_path, durable=True), shards))
    for shard, digest in zip(shards, digests, strict=True):
        expected = shard.entry.sha256
        if expected and digest != expected:
            shard.failures += 1
            warn(
                f"{shard.file_path}: sha256 {digest[:12]}… does not match the "
                f"manifest's {expected[:12]}…; re-checking and fetching it again"
            )
            if shard.failures >= MAX_SHARD_FAILURES:
                raise ManifestError(
                    shard.file_path,
                    "sha256 keeps disagreeing with the manifest although every piece "
                    "passed; the manifest does not describe this torrent's data",
                )
            recheck = True
            continue
        shard.ready = True
        passed.append((shard.entry if expected else with_sha(shard.entry, digest), digest))
    return passed, recheck
