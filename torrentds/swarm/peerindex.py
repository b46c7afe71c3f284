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

    ``TORRENTDS_SLICE`` is ours: set but unusable, it is a UsageError naming it.
    A launcher's variables that do not make an index (a torchrun with uneven nodes)
    are not meant for us and are passed over."""
    if env.get("TORRENTDS_SLICE"):
        index, _, count = env["TORRENTDS_SLICE"].partition("/")
        return _pair(index, count, "TORRENTDS_SLICE", f"TORRENTDS_SLICE={env['TORRENTDS_SLICE']}")
    for count_name in ("SLURM_NNODES", "SLURM_JOB_NUM_NODES"):
        if "SLURM_NODEID" in env and count_name in env:
            found = _launchers(env["SLURM_NODEID"], env[count_name], f"SLURM_NODEID/{count_name}")
            if found is not None:
                return found
    if all(n in env for n in ("GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")):
        world, local = env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"]
        if world.isdigit() and local.isdigit() and int(local) and not int(world) % int(local):
            count = str(int(world) // int(local))
            return _launchers(env["GROUP_RANK"], count, "torchrun's GROUP_RANK")
    return None


def _launchers(index: str, count: str, source: str) -> PeerIndex | None:
    """A launcher's pair, or None if it does not make an index."""
    try:
        return _pair(index, count, source, source)
    except UsageError:
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
