"""A web seed that fails (404, 500, never answers, wrong bytes) beside a good peer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.faults.helpers import assert_intact, get, seed
from tests.faults.webseed import FaultyWebSeed
from tests.netfixtures import Dataset
from tests.procs import running

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)


@pytest.mark.parametrize("mode", ["404", "500", "slow", "wrong"])
def test_bad_web_seed_beside_a_good_peer(dataset: Dataset, tmp_path: Path, mode: str) -> None:
    """``slow`` never answers (until the test ends); ``wrong`` sends 206 with
    every byte inverted. The good peer is capped at 2 MiB/s so that the web
    seed gets its share of requests."""
    web = FaultyWebSeed(dataset.name, dataset.origin, mode)
    seeder = seed(dataset, "--max-upload", "2M")
    try:
        with running(seeder):
            started = time.monotonic()
            leecher = get(
                str(dataset.torrent),
                tmp_path,
                "--peer",
                f"127.0.0.1:{seeder.port}",
                "--web-seed",
                web.url,
                "--timeout",
                "60",
            )
            with running(leecher):
                code = leecher.finish(90)
                if code != 0:  # what led there: failed pieces, bans, web seeds put back
                    print(f"seeder {seeder.port} web seed {web.port}")
                    print(
                        *(e["message"] for e in leecher.events if e["event"] == "warning"), sep="\n"
                    )
                assert code == 0, leecher.stderr
            elapsed = time.monotonic() - started
    finally:
        web.close()
    done = leecher.wait_event("done", 1)
    print(
        f"\nWEBSEED {mode}: done in {elapsed:.1f} s; web seed asked {web.requests} times, "
        f"sent {web.wrong_bytes_sent} wrong bytes; hash failures {done['hash_failures']}; "
        f"restarts {sum('restarting the torrent' in w for w in done['warnings'])}"
    )
    assert web.requests >= 1, "the web seed was never asked"
    assert_intact(tmp_path / dataset.name)  # whatever it sent, only right bytes were kept
    if mode == "wrong":
        assert web.wrong_bytes_sent > 0
        assert done["hash_failures"] >= 1
        banned = f"peer 127.0.0.1:{web.port} banned"
        assert any(w.startswith(banned) for w in done["warnings"]), done["warnings"]
