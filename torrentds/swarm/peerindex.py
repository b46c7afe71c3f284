"""Which peer of how many this is, when ``--slice`` and ``--rank`` do not say:
the launcher's environment. Standard library only.

A node's index and the node count are what a launcher gives every process it
starts; the sidecar beside the training process inherits them. Looked up in
this order (the first pair present wins):

- ``TORRENTDS_SLICE=I/K``: ours, for anything else (a Kubernetes indexed Job:
  ``I`` from ``JOB_COMPLETION_INDEX`` in the pod spec);
- Slurm: ``SLURM_NODEID`` of ``SLURM_NNODES`` (or ``SLURM_JOB_NUM_NODES``);
- torchrun: ``GROUP_RANK`` of ``WORLD_SIZE / LOCAL_WORLD_SIZE`` nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torrentds.dataset import nodes
from torrentds.errors import UsageError


@dataclass(frozen=True)
class PeerIndex:
    index: int
    count: int
    source: str  # where it came from, said in the started event and /status


def from_environment(env: Mapping[str, str]) -> PeerIndex | None:
    """This peer's index from the launcher's variables in ``env`` (None: none set).
    A variable that is set but unusable is a UsageError naming it."""
    if "TORRENTDS_SLICE" in env:
        index, _, count = env["TORRENTDS_SLICE"].partition("/")
        return _pair(index, count, "TORRENTDS_SLICE", f"TORRENTDS_SLICE={env['TORRENTDS_SLICE']}")
    if "SLURM_NODEID" in env:
        for count_name in ("SLURM_NNODES", "SLURM_JOB_NUM_NODES"):
            if count_name in env:
                return _pair(
                    env["SLURM_NODEID"],
                    env[count_name],
                    f"SLURM_NODEID/{count_name}",
                    f"SLURM_NODEID={env['SLURM_NODEID']}, {count_name}={env[count_name]}",
                )
    names = ("GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")
    if all(n in env for n in names):
        shown = ", ".join(f"{n}={env[n]}" for n in names)
        try:
            world, local = int(env["WORLD_SIZE"]), int(env["LOCAL_WORLD_SIZE"])
        except ValueError:
            raise UsageError(shown, "not integers in the environment") from None
        if local < 1 or world % local:
            raise UsageError(shown, "WORLD_SIZE is not a multiple of LOCAL_WORLD_SIZE")
        return _pair(env["GROUP_RANK"], str(world // local), "torchrun's GROUP_RANK", shown)
    return None


def _pair(index: str, count: str, source: str, shown: str) -> PeerIndex:
    try:
        i, k = int(index), int(count)
    except ValueError:
        raise UsageError(shown, "not integers in the environment") from None
    try:
        nodes.check_index(i, k, "index", "count")
    except UsageError as exc:
        raise UsageError(shown, exc.reason) from None
    return PeerIndex(i, k, source)
