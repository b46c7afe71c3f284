"""kill -9 of a leecher at five points; the same command run again completes.

Points: right after the ``metadata`` event (magnet: metadata fetched from the
peer), at 10 %, 50 % and 90 % of the data on disk, and while a shard is being
verified: its bytes on disk already equal the good copy but ``ready.jsonl``
does not list it yet (libtorrent's piece check, the flush and torrentds's
sha256 read-back happen in that window). Progress is measured on disk against
the seeder's copy every ~20 ms (``DiskProgress``): the ``progress`` events
come every 2 s, too coarse for a 5 s download. The rerun is the same command;
it also finds a fast seeder that was not there the first time.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import libtorrent as lt
import pytest

from tests.faults.helpers import (
    DiskProgress,
    Layout,
    assert_intact,
    damaged_copy,
    get,
    read_ready,
    seed,
    seed_folder,
)
from tests.netfixtures import Dataset
from tests.procs import Torrentds, free_port, running

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)

POINTS = ["metadata", "10%", "50%", "90%", "verifying"]
# The slow seeder's cap: 5.5 MB take ~11 s, so each point is a few quota steps apart.
RATE = "512K"


@pytest.fixture
def partial(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One per test: the partial seeder fetches the damaged piece during the rerun.
    return damaged_copy(dataset, tmp_path_factory.mktemp("partial"))[0]


def _until_fraction(
    leecher: Torrentds, progress: DiskProgress, folder: Path, target: float
) -> float:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and leecher.proc.poll() is None:
        done = progress.fraction(folder)
        if done >= target:
            return done
        time.sleep(0.02)
    raise AssertionError(f"never reached {target:.0%} on disk: exit={leecher.proc.poll()}")


def _until_verifying(leecher: Torrentds, ds: Dataset, folder: Path) -> str:
    """Stop the leecher (SIGSTOP) while a shard is complete and right on disk but
    not logged yet; returns that shard. Seen while the process runs, the window
    is re-checked once it is stopped, so a late look cannot count as a hit."""
    shards = json.loads((ds.origin / "torrentds.json").read_text())["shards"]
    good: dict[str, bytes] = {str(s["path"]): (ds.origin / s["path"]).read_bytes() for s in shards}

    def caught() -> str | None:
        logged = {r["path"] for r in read_ready(folder)}
        for path, data in good.items():
            try:
                if path not in logged and (folder / path).read_bytes() == data:
                    return path
            except FileNotFoundError:
                continue
        return None

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and leecher.proc.poll() is None:
        if caught() is not None:
            leecher.proc.send_signal(signal.SIGSTOP)
            path = caught()
            if path is not None:
                return path  # still stopped: the caller kills it
            leecher.proc.send_signal(signal.SIGCONT)  # logged meanwhile: look again
        time.sleep(0.01)
    raise AssertionError(f"no shard caught between arrival and ready: exit={leecher.proc.poll()}")


def _resume_covers(resume: Path, folder: Path, logged: list[dict[str, object]]) -> list[str]:
    """Logged shards whose pieces the resume data on disk does not hold."""
    if not logged:
        return []
    if not resume.is_file():
        return [str(r["path"]) for r in logged]
    have = lt.read_resume_data(resume.read_bytes()).have_pieces
    spans = {
        s["path"]: range(s["first_piece"], s["last_piece"] + 1)
        for s in json.loads((folder / "torrentds.json").read_text())["shards"]
    }
    return [
        str(r["path"])
        for r in logged
        if not all(p < len(have) and have[p] for p in spans[str(r["path"])])
    ]


# Under CPU load the first version of this test flaked (end-game duplicates above a
# byte slack; the "verifying" window missed). Now the verifying point stops the process
# before it re-checks the window, and the promise is checked on the resume data itself.
@pytest.mark.parametrize("point", POINTS)
def test_kill_9_then_rerun_completes(
    dataset: Dataset, partial: Path, tmp_path: Path, point: str
) -> None:
    folder = tmp_path / dataset.name
    # The first run has one slow partial source; the same command run again also
    # finds a fast full one (its port is named from the start and listened on later).
    # Hash-checked (no --skip-check): the damaged piece is never offered.
    slow = seed_folder(partial, dataset.torrent, "--max-upload", RATE)
    fast_port = free_port()
    source = (
        f"magnet:?xt=urn:btih:{dataset.infohash}" if point == "metadata" else str(dataset.torrent)
    )
    with running(slow):
        extra = ["--timeout", "60", "--peer", f"127.0.0.1:{slow.port}"]
        extra += ["--peer", f"127.0.0.1:{fast_port}"]
        first = get(source, tmp_path, *extra)
        at = ""
        with running(first):
            if point == "metadata":
                first.wait_event("metadata", 30)
            elif point == "verifying":
                at = _until_verifying(first, dataset, folder)
            else:
                progress = DiskProgress(Layout.of(dataset.torrent), dataset.origin)
                target = int(point.rstrip("%")) / 100
                at = f"{_until_fraction(first, progress, folder, target):.0%} on disk"
            first.kill(signal.SIGKILL)
        assert first.finish(10) == -signal.SIGKILL  # also reads the events it printed
        # Its only source lacks a piece: a "completed" here would be a false claim.
        assert not any(e["event"] == "completed" for e in first.events), first.events[-3:]
        before = read_ready(folder)
        if point == "verifying":
            # Caught in the window: the shard was complete on disk, never logged.
            assert at not in {r["path"] for r in before}, f"{at} was logged before the kill"
        # The promise behind "re-downloads nothing verified": every shard the log
        # calls ready has its pieces in the resume data the rerun starts from.
        resume = tmp_path / ".torrentds" / "resume" / f"{dataset.infohash}.resume"
        uncovered = _resume_covers(resume, folder, before)
        assert not uncovered, f"logged ready, missing from the resume data: {uncovered}"
        fast = seed(dataset, "--listen", f"127.0.0.1:{fast_port}")
        with running(fast):
            assert fast.port == fast_port
            second = get(source, tmp_path, *extra)
            with running(second):
                assert second.finish(90) == 0, second.stderr
    done = second.wait_event("done", 1)
    verified = sum(r["bytes"] for r in before)
    print(
        f"\nKILL {point}: at {at or 'metadata'}; {len(before)} shards ({verified} bytes) "
        f"logged before the kill; rerun downloaded {done['downloaded']} of {dataset.size} bytes"
    )
    assert_intact(folder)  # sha256sum -c; each shard logged once, with the manifest's sha256
    after = read_ready(folder)
    assert after[: len(before)] == before, "lines logged before the kill changed"
    # And the rerun did not fetch the verified shards again. (Loose: blocks asked
    # twice in libtorrent's end game from two seeders add up under CPU load; the
    # exact promise is the resume-data check above.)
    assert done["downloaded"] <= dataset.size - verified + dataset.size // 4
