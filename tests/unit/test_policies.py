"""The job's pure policies: phases, piece deadlines, web-seed re-adds, stall restarts."""

from __future__ import annotations

import itertools

import pytest

from torrentds.swarm import recovery
from torrentds.swarm.deadlines import MAX_DEADLINES, DeadlineFeeder
from torrentds.swarm.phase import NEXT, Phase, PhaseError, move


def test_phases_move_forward_only() -> None:
    path = [Phase.METADATA, Phase.MANIFEST, Phase.DOWNLOADING, Phase.COMPLETING, Phase.SEEDING]
    for here, there in itertools.pairwise(path):
        assert move(here, there) is there
    assert move(Phase.METADATA, Phase.DOWNLOADING) is Phase.DOWNLOADING  # no manifest
    for here in Phase:
        for there in set(Phase) - NEXT[here]:
            with pytest.raises(PhaseError, match=f"from {here.value} to {there.value}"):
                move(here, there)


def test_deadlines_go_out_in_order_a_batch_at_a_time() -> None:
    feeder = DeadlineFeeder()
    assert feeder.queue([(2, range(100, 200)), (0, range(0, 100))])
    assert not feeder.queue([(2, range(100, 200))])  # queued already
    have = {100, 101}
    batch, start = feeder.top_up(have)
    assert batch == list(range(102, 102 + MAX_DEADLINES)) and start == 0
    assert feeder.top_up(have) == ([], MAX_DEADLINES)  # all out, none passed
    assert feeder.passed(102) and not feeder.passed(5)
    batch, start = feeder.top_up(have)
    assert batch == [102 + MAX_DEADLINES] and start == MAX_DEADLINES


def test_a_dropped_web_seed_is_retried_with_a_doubling_wait_while_nothing_arrives() -> None:
    retry = recovery.WebSeedRetry(base=10.0)
    assert retry.due(0.0, ["http://a/", "http://b/"], have=0) == []
    assert retry.due(1.0, ["http://a/"], have=0) == ["http://b/"]  # dropped: at once
    assert retry.due(5.0, ["http://a/"], have=0) == []
    assert retry.due(11.0, ["http://a/"], have=0) == ["http://b/"]
    assert retry.due(21.0, ["http://a/"], have=0) == []  # no piece since: now 20 s
    assert retry.due(31.0, ["http://a/"], have=0) == ["http://b/"]  # and then 40 s
    assert retry.due(35.0, ["http://a/"], have=3) == []
    assert retry.due(41.5, ["http://a/"], have=3) == ["http://b/"]  # pieces arrive: 10 s
    assert retry.due(60.0, ["http://a/", "http://b/"], have=3) == []  # back in the list


def test_a_stall_restarts_only_with_a_sign_and_waits_longer_each_time() -> None:
    watch = recovery.StallWatch(last_new_data=0.0)
    assert watch.restart_reason(25.0, unchecked=[]) is None  # quiet, but no sign
    assert (
        watch.restart_reason(25.0, unchecked=[7]) == "no new data in 25 s (piece 7 never checked)"
    )
    watch.data(30.0, total_done=1000)  # blocks still arriving: not a stall
    watch.banned = True
    assert watch.restart_reason(45.0, unchecked=[]) is None
    assert watch.restart_reason(51.0, unchecked=[]) == "no new data in 21 s (a peer was banned)"
    watch.restarted(51.0)
    assert not watch.banned and watch.wait == 2 * recovery.STALL_RESTART_SECONDS
    watch.data(52.0, total_done=10)  # counts from zero after a restart
    assert watch.best_done == 10
