"""Shard order: a ranked node's own shards first, a window of top priority."""

from __future__ import annotations

import json
from pathlib import Path

import libtorrent as lt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.faults import helpers
from tests.netfixtures import Dataset
from tests.procs import ISOLATED, Torrentds, running
from torrentds.dataset import manifest as manifest_module
from torrentds.dataset.manifest import MANIFEST_NAME, ShardEntry
from torrentds.swarm import order


def _entries(n_train: int, n_val: int) -> list[ShardEntry]:
    return [
        ShardEntry(f"train/train-{i:06d}.tar", "train", 1, "0" * 64, 1) for i in range(n_train)
    ] + [ShardEntry(f"val/val-{i:06d}.tar", "val", 1, "0" * 64, 1) for i in range(n_val)]


@given(st.integers(1, 40), st.integers(0, 10), st.integers(1, 8), st.data())
def test_ranked_order_puts_own_shards_first(
    n_train: int, n_val: int, world: int, data: st.DataObject
) -> None:
    rank = data.draw(st.integers(0, world - 1))
    entries = _entries(n_train, n_val)
    got = order.download_order(entries, order.Ordering(rank=rank, world_size=world))
    assert sorted(got) == list(range(len(entries)))
    own = order.mine(entries, rank, world)
    # split_by_node: urls[rank::world_size] within each split
    expected = {i for i in range(n_train) if i % world == rank}
    expected |= {n_train + i for i in range(n_val) if i % world == rank}
    assert own == expected
    assert set(got[: len(own)]) == own


@given(st.integers(1, 30), st.integers(1, 5))
def test_window_is_next_unready_shards(n: int, window: int) -> None:
    entries = _entries(n, 0)
    ordering = order.Ordering(window=window)
    seq = order.download_order(entries, ordering)
    ready = [False] * n
    for done in seq:  # as shards complete, the window slides along the order
        prio = order.priorities(entries, seq, ready, ordering)
        top = [i for i in range(n) if prio[i] == order.TOP]
        assert top == sorted([i for i in seq if not ready[i]][:window])
        assert all(p in (order.TOP, order.NORMAL) for p in prio)
        ready[done] = True


def test_only_mine_skips_others() -> None:
    entries = _entries(8, 0)
    ordering = order.Ordering(rank=1, world_size=4, only_mine=True, window=1)
    seq = order.download_order(entries, ordering)
    prio = order.priorities(entries, seq, [False] * 8, ordering)
    assert prio == [0, 7, 0, 0, 0, 6, 0, 0]


def _ready_paths(folder: Path) -> list[str]:
    log = folder / ".torrentds" / "ready.jsonl"
    return [json.loads(line)["path"] for line in log.read_text().splitlines()]


def test_rank_1_of_4_logs_its_shards_first(dataset: Dataset, tmp_path: Path) -> None:
    seeder = helpers.seed(dataset, "--max-upload", "2M")
    with running(seeder):
        leecher = Torrentds(
            [
                "get",
                str(dataset.torrent),
                "-d",
                str(tmp_path),
                "--json",
                "--rank",
                "1",
                "--world-size",
                "4",
                "--window",
                "1",
                "--peer",
                f"127.0.0.1:{seeder.port}",
                *ISOLATED,
            ]
        )
        with running(leecher):
            assert leecher.finish(120) == 0, leecher.stderr
    shards = json.loads((tmp_path / dataset.name / "torrentds.json").read_text())["shards"]
    own = order.mine([ShardEntry(**s) for s in shards], 1, 4)
    own_paths = {shards[i]["path"] for i in own}
    logged = _ready_paths(tmp_path / dataset.name)
    assert set(logged[: len(own_paths)]) == own_paths, logged


def test_only_mine_stops_after_own_shards(dataset: Dataset, tmp_path: Path) -> None:
    seeder = helpers.seed(dataset)
    with running(seeder):
        leecher = Torrentds(
            [
                "get",
                str(dataset.torrent),
                "-d",
                str(tmp_path),
                "--json",
                "--rank",
                "0",
                "--world-size",
                "3",
                "--only-mine",
                "--peer",
                f"127.0.0.1:{seeder.port}",
                *ISOLATED,
            ]
        )
        with running(leecher):
            assert leecher.finish(120) == 0, leecher.stderr
    shards = json.loads((tmp_path / dataset.name / "torrentds.json").read_text())["shards"]
    own = order.mine([ShardEntry(**s) for s in shards], 0, 3)
    assert sorted(_ready_paths(tmp_path / dataset.name)) == sorted(shards[i]["path"] for i in own)
    done = leecher.wait_event("done", 1)
    assert done["downloaded"] < dataset.size


def test_ranked_node_holds_other_shards_while_its_own_arrive() -> None:
    entries = _entries(8, 0)
    ordering = order.Ordering(rank=0, world_size=2, window=1)
    seq = order.download_order(entries, ordering)
    held = order.priorities(entries, seq, [False] * 8, ordering, hold_others=True)
    assert held == [7, 0, 6, 0, 6, 0, 6, 0]
    # After a stall (or once its own are in) the others flow again, at low priority.
    released = order.priorities(entries, seq, [False] * 8, ordering, hold_others=False)
    assert released == [7, 1, 6, 1, 6, 1, 6, 1]


def test_slice_deals_a_shared_window() -> None:
    entries = _entries(6, 0)
    ordering = order.Ordering(window=2, slice=order.Slice(1, 3))
    seq = order.download_order(entries, ordering)
    # Every peer keeps the manifest's order: one window for all.
    assert seq == list(range(6))
    assert order.priorities(entries, seq, [False] * 6, ordering) == [7, 7, 4, 4, 4, 4]
    assert order.priorities(entries, seq, [True, False] * 3, ordering) == [4, 7, 4, 7, 4, 4]
    # Peer 1 of 3 owns pieces 1, 4, 6 and 7 (owners). Its own first, the others'
    # after all its own (it gets them from the peers that fetched them); in each,
    # the window's first shard (pieces 0-1), the rest of the window, then the rest;
    # a piece not wanted (0) stays so.
    base = [7, 7, 7, 7, 0, 4, 4, 1]
    owners = [0, 1, 2, 0, 1, 2, 1, 1]
    assert order.slice_priorities(base, owners, 1, head=range(2)) == [4, 7, 3, 3, 0, 2, 5, 5]
    # A window held too long (a peer left or is slow): the others' part is ours too.
    fell_back = order.slice_priorities(base, owners, 1, fallback=True, head=range(2))
    assert fell_back == [7, 7, 6, 6, 0, 2, 5, 5]
    # Its own part all in: the others' pieces beyond the window (their owners fetch them
    # last) come before the window's (in flight to their owners now).
    done = order.slice_priorities(base, owners, 1, head=range(2), own_done=True)
    assert done == [4, 7, 3, 3, 0, 5, 5, 5]


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.integers(1, 9),
    st.sampled_from([16 << 10, 256 << 10, 1 << 20, 4 << 20]),
)
def test_slice_owners_cut_each_shard_in_even_runs(
    shard_pieces: list[int], count: int, piece_size: int
) -> None:
    shards, start = [], 1  # piece 0: a manifest outside every shard
    for n in shard_pieces:
        shards.append(range(start, start + n))
        start += n
    owners = order.slice_owners(shards, start + 2, count, piece_size)
    assert len(owners) == start + 2 and all(0 <= o < count for o in owners)
    unit = max(1, order.SLICE_UNIT_BYTES // piece_size)
    for s, pieces in enumerate(shards):
        got = [owners[p] for p in pieces]
        # Whole runs of ``unit`` pieces, each peer's part of a shard contiguous...
        assert all(got[j] == got[j - j % unit] for j in range(len(got)))
        turned = [(o - s) % count for o in got]
        assert turned == sorted(turned)
        # ...and as big as any other's, to within one run.
        runs = -(-len(pieces) // unit)
        per_peer = [sum(1 for j in range(0, len(got), unit) if got[j] == i) for i in range(count)]
        assert max(per_peer) - min(per_peer) <= 1 and sum(per_peer) == runs
        # The parts turn by one peer per shard.
        assert got[0] == s % count


def test_slice_owners_give_a_shared_piece_to_the_first_shard() -> None:
    # Two adopted shards share piece 4; 1 MiB pieces: runs of one piece.
    owners = order.slice_owners([range(0, 5), range(4, 9)], 9, 2, 1 << 20)
    assert owners[:5] == [0, 0, 0, 1, 1]
    assert owners[5:] == [1, 1, 0, 0]


def test_slice_takes_its_pieces_first(dataset: Dataset, tmp_path: Path) -> None:
    # A seeder at 128 KiB/s (2 pieces/s of 85, so at most 16 in 8 s): the leecher
    # gives up after 8 s, before its slice (pieces 64-84: runs of 64) is in.
    seeder = helpers.seed(dataset, "--max-upload", "128K")
    with running(seeder):
        leecher = helpers.get(
            str(dataset.torrent),
            tmp_path,
            *("--slice", "1/2", "--timeout", "8", "--peer", f"127.0.0.1:{seeder.port}"),
        )
        with running(leecher):
            assert leecher.finish(60) == 1, leecher.stderr
    resume = tmp_path / ".torrentds" / "resume" / f"{dataset.infohash}.resume"
    params = lt.read_resume_data(resume.read_bytes())
    have = {i for i, h in enumerate(params.have_pieces) if h}
    layout = helpers.Layout.of(dataset.torrent)
    manifest = set(layout.pieces_of(MANIFEST_NAME))
    shards = [layout.pieces_of(e.path) for e in manifest_module.load(dataset.origin).shards]
    owners = order.slice_owners(shards, layout.pieces, 2, layout.piece_size)
    mine = {p for p in range(layout.pieces) if owners[p] == 1} - manifest
    assert 3 <= len(have - manifest) < len(mine), have
    # One stray piece may start before the slice is put back after libtorrent
    # applies the new file priorities (1 run in ~40); without slices most are stray.
    assert len(have - manifest - mine) <= 1, sorted(have - manifest - mine)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--slice", "2/2"], "0 <= I < K"),
        (["--slice", "one/6"], "0 <= I < K"),
        (["--slice", "3"], "0 <= I < K"),
        (["--slice", "1/4", "--rank", "1", "--world-size", "4"], "give one of them"),
    ],
)
def test_bad_slice_is_one_line_exit_2(
    dataset: Dataset, tmp_path: Path, extra: list[str], message: str
) -> None:
    p = Torrentds(["get", str(dataset.torrent), "-d", str(tmp_path), *ISOLATED, *extra])
    assert p.finish(30) == 2
    assert message in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr
    assert not (tmp_path / dataset.name).exists()
