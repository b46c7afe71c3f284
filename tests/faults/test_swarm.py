"""Churn (the only seeder leaves at ~50 %) and load (20 leechers in one swarm)."""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.faults.helpers import DiskProgress, Layout, assert_intact, get, seed
from tests.netfixtures import Dataset, create_dataset
from tests.procs import Nginx, Opentracker, Torrentds, running, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)


@pytest.mark.slow  # 5-15 s; keeps the fast suite's fault tests under 90 s
def test_seed_leaves_at_half_leechers_finish_from_each_other_and_a_web_seed(
    tmp_path: Path, tracker: Opentracker
) -> None:
    # A slow web seed (512 KiB/s per connection), so that the seeder matters until it leaves.
    root = tmp_path / "www"
    root.mkdir()
    server = Nginx(root, tmp_path / "nginx", limit_rate="512k")
    try:
        ds = create_dataset(tmp_path, tracker, "--web-seed", server.url, "--name", "churn")
        (root / ds.name).symlink_to(ds.origin)
        seeder = seed(ds, "--max-upload", "1M")
        leechers = [
            get(str(ds.torrent), tmp_path / f"peer{i}", "--peer", f"127.0.0.1:{seeder.port}")
            for i in range(5)
        ]
        progress = DiskProgress(Layout.of(ds.torrent), ds.origin)

        def average() -> float:
            return statistics.mean(
                progress.fraction(tmp_path / f"peer{i}" / ds.name) for i in range(5)
            )

        with running(seeder, *leechers):
            wait_until(lambda: average() >= 0.5, 60, "leechers at 50 % on average", interval=0.1)
            at = average()
            assert all(p.proc.poll() is None for p in leechers), "a leecher finished first"
            seeder.kill()
            left = time.time()
            served = server.requests_served()
            for p in leechers:
                assert p.finish(90) == 0, p.stderr
        done = [p.wait_event("done", 1) for p in leechers]
        traded = sum(d["uploaded"] for d in done)
        finished = max(p.wait_event("completed", 1)["time"] for p in leechers) - left
        print(
            f"\nCHURN seeder left at {at:.0%} on average; all 5 done {finished:.1f} s later; "
            f"leechers uploaded {traded} bytes to each other; web seed requests after: "
            f"{server.requests_served() - served}"
        )
        assert traded > 0, "the leechers did not trade"
        assert server.requests_served() > served, "the web seed was not used after the seeder left"
        for i in range(5):
            assert_intact(tmp_path / f"peer{i}" / ds.name)
    finally:
        server.stop()


def _reap(proc: Torrentds, rss: dict[int, int]) -> None:
    """Wait for the process and keep its peak RSS (KiB) from wait4's rusage."""
    _, status, usage = os.wait4(proc.proc.pid, 0)
    proc.proc.returncode = os.waitstatus_to_exitcode(status)
    rss[proc.proc.pid] = usage.ru_maxrss


@pytest.mark.slow
def test_twenty_leechers_in_one_swarm(dataset: Dataset, tmp_path: Path) -> None:
    seeder = seed(dataset)
    rss: dict[int, int] = {}
    with running(seeder):
        started = time.monotonic()
        leechers = [
            get(str(dataset.torrent), tmp_path / f"peer{i}", "--peer", f"127.0.0.1:{seeder.port}")
            for i in range(20)
        ]
        reapers = [threading.Thread(target=_reap, args=(p, rss)) for p in leechers]
        for t in reapers:
            t.start()
        with running(*leechers):
            for t in reapers:
                t.join(180)
            codes = [p.finish(10) for p in leechers]
        elapsed = time.monotonic() - started
    assert codes == [0] * 20, [p.stderr for p in leechers if p.proc.returncode]
    mib = sorted(v / 1024 for v in rss.values())
    print(
        f"\nLOAD 20 leechers done in {elapsed:.1f} s; peak RSS MiB min {mib[0]:.0f}, "
        f"median {statistics.median(mib):.0f}, max {mib[-1]:.0f} (KiB: {sorted(rss.values())})"
    )
    assert len(mib) == 20 and mib[-1] < 400
    for i in range(20):
        assert_intact(tmp_path / f"peer{i}" / dataset.name)
