"""The tracker dies mid-swarm: connected peers carry on; --peer and a web seed still work."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.helpers import DiskProgress, Layout, assert_intact, get, seed
from tests.netfixtures import create_dataset
from tests.procs import Nginx, Opentracker, running, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)


@pytest.fixture
def own_tracker(tmp_path: Path) -> Iterator[Opentracker]:
    """An opentracker of this test's own, so that it can be stopped."""
    t = Opentracker(tmp_path / "opentracker")
    yield t
    t.stop()


def test_tracker_dies_mid_swarm(
    tmp_path: Path, own_tracker: Opentracker, web: tuple[Nginx, Path]
) -> None:
    server, root = web
    ds = create_dataset(tmp_path, own_tracker, "--name", "orphaned", per_class=30)
    (root / ds.name).symlink_to(ds.origin)
    seeder = seed(ds, "--max-upload", "1M")
    with running(seeder):
        # Two leechers find the seeder (and each other) through the tracker only.
        peers = [get(str(ds.torrent), tmp_path / f"peer{i}") for i in range(2)]
        with running(*peers):
            progress = DiskProgress(Layout.of(ds.torrent), ds.origin)
            wait_until(
                lambda: all(
                    progress.fraction(tmp_path / f"peer{i}" / ds.name) >= 0.2 for i in range(2)
                ),
                60,
                "both leechers at 20 %",
                interval=0.1,
            )
            assert all(p.proc.poll() is None for p in peers), "finished before the tracker died"
            own_tracker.stop()
            died = time.time()
            # Newcomers after the tracker died: one names the seeder, one has a web seed.
            by_peer = get(
                str(ds.torrent), tmp_path / "by-peer", "--peer", f"127.0.0.1:{seeder.port}"
            )
            by_web = get(str(ds.torrent), tmp_path / "by-web", "--web-seed", server.url)
            with running(by_peer, by_web):
                for p in (*peers, by_peer, by_web):
                    assert p.finish(60) == 0, p.stderr
    for p in peers:
        assert p.wait_event("completed", 1)["time"] > died  # finished after the tracker died
    tracker_errors = [
        e
        for e in by_peer.events + by_web.events
        if e["event"] == "warning" and "tracker" in e["message"]
    ]
    assert tracker_errors, "the dead tracker was not reported"
    print("\nTRACKER", tracker_errors[0]["message"])
    for folder in ("peer0", "peer1", "by-peer", "by-web"):
        assert_intact(tmp_path / folder / ds.name)
