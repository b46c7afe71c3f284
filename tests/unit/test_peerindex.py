"""The peer index from the launcher's environment, and what the get options make of it."""

from __future__ import annotations

import pytest

from torrentds.errors import UsageError
from torrentds.options import GetOptions, ordering_of
from torrentds.swarm import order
from torrentds.swarm.peerindex import PeerIndex, from_environment


@pytest.mark.parametrize(
    "env,found",
    [
        ({}, None),
        ({"TORRENTDS_SLICE": "2/6"}, PeerIndex(2, 6, "TORRENTDS_SLICE")),
        (
            {"SLURM_NODEID": "3", "SLURM_NNODES": "4"},
            PeerIndex(3, 4, "SLURM_NODEID/SLURM_NNODES"),
        ),
        (
            {"SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "2"},
            PeerIndex(0, 2, "SLURM_NODEID/SLURM_JOB_NUM_NODES"),
        ),
        (
            {"GROUP_RANK": "1", "WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "RANK": "9"},
            PeerIndex(1, 2, "torchrun's GROUP_RANK"),
        ),
        # Ours first, then Slurm's: a torchrun inside a Slurm job is one node per Slurm node.
        (
            {"SLURM_NODEID": "1", "SLURM_NNODES": "2", "TORRENTDS_SLICE": "0/3"},
            PeerIndex(0, 3, "TORRENTDS_SLICE"),
        ),
        # A node id without a count says nothing; an empty TORRENTDS_SLICE is unset.
        ({"SLURM_NODEID": "1"}, None),
        (
            {"TORRENTDS_SLICE": "", "SLURM_NODEID": "1", "SLURM_NNODES": "2"},
            PeerIndex(1, 2, "SLURM_NODEID/SLURM_NNODES"),
        ),
        # A launcher's variables that make no index are not meant for us: passed over.
        ({"SLURM_NODEID": "x", "SLURM_NNODES": "4"}, None),
        ({"GROUP_RANK": "0", "WORLD_SIZE": "12", "LOCAL_WORLD_SIZE": "8"}, None),
    ],
)
def test_the_launchers_variables(env: dict[str, str], found: PeerIndex | None) -> None:
    assert from_environment(env) == found


@pytest.mark.parametrize(
    "env,shown",
    [
        ({"TORRENTDS_SLICE": "6/6"}, "TORRENTDS_SLICE=6/6: need 0 <= index < count"),
        ({"TORRENTDS_SLICE": "two"}, "TORRENTDS_SLICE"),
    ],
)
def test_unusable_variables_are_named(env: dict[str, str], shown: str) -> None:
    with pytest.raises(UsageError) as caught:
        from_environment(env)
    assert shown in str(caught.value)


def test_the_environment_gives_a_slice_unless_the_options_order() -> None:
    slurm = {"SLURM_NODEID": "2", "SLURM_NNODES": "6"}
    got = ordering_of(GetOptions(source="x"), slurm)
    assert got.slice == order.Slice(2, 6) and got.window == order.SLICE_WINDOW
    assert got.peer_index() == "2/6 from SLURM_NODEID/SLURM_NNODES"
    assert ordering_of(GetOptions(source="x", slice="1/3"), slurm).peer_index() == (
        "1/3 from --slice 1/3"
    )
    ranked = ordering_of(GetOptions(source="x", rank=1, world_size=6), slurm)
    assert ranked.slice is None and ranked.peer_index() is None
    # One node: a plain get, alone.
    alone = ordering_of(GetOptions(source="x"), {"TORRENTDS_SLICE": "0/1"})
    assert alone.slice is None and not alone.from_swarm and alone.peer_index() is None
    # No index anywhere: the swarm deals one; its current deal is shown with it.
    free = ordering_of(GetOptions(source="x"), {})
    assert free.from_swarm and free.slice is None and free.window == order.SLICE_WINDOW
    assert free.peer_index() == "from the swarm"
    assert free.peer_index(order.Slice(3, 5)) == "3/5 from the swarm"
