"""How a split's shards are dealt to nodes (and to a node's loader workers).

Node ``rank`` of ``world_size`` takes the split's shards at positions ``rank,
rank + world_size, ...`` in the manifest's order, as WebDataset's
``split_by_node`` deals them. The fetch order (``swarm.order``) and the readers
(``training.consume``) both use ``share``, so what a node downloads first is
exactly what it reads. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from torrentds.errors import UsageError

T = TypeVar("T")


def share(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """``items`` (one split's shards, in manifest order) that node ``rank`` takes."""
    return list(items[rank::world_size])


def check_index(
    index: int | None, count: int | None, name: str = "rank", count_name: str = "world size"
) -> tuple[int, int] | None:
    """``(index, count)`` when both are given and ``0 <= index < count``; None
    when neither is; UsageError (naming both) otherwise."""
    if index is None and count is None:
        return None
    if index is None or count is None:
        raise UsageError(f"{name}={index}, {count_name}={count}", "give both, or neither")
    if count < 1 or not 0 <= index < count:
        raise UsageError(
            f"{name}={index}, {count_name}={count}", f"need 0 <= {name} < {count_name}"
        )
    return index, count
