"""The training side of the ready log: shards as the downloader verifies them.

``ready_shards`` tails ``DATASET/.torrentds/ready.jsonl`` and yields each shard
of a split as soon as it is logged, split between nodes and DataLoader workers
the way WebDataset splits a shard list; ``shard_urls`` and ``shard_pattern``
give the list or brace pattern to hand to ``webdataset.WebDataset``.

Training needs no libtorrent: this module imports only the standard library,
``watch``, ``handoff``, ``manifest``, ``nodes`` and ``errors`` (which import only the standard
library). ``torch`` is consulted for DataLoader worker info only when the
process has already imported it (a DataLoader worker always has).

The manifest is trusted once the ready log holds a line: the downloader logs a
shard only after it checked ``torrentds.json``'s pieces and flushed it, while
before that the file may be half-written by libtorrent.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from torrentds.dataset import manifest, nodes
from torrentds.errors import ManifestError, StorageError, UsageError
from torrentds.training.watch import ReadyStatus, Watch, no_split

POLL_INTERVAL = 0.2  # seconds between looks at the ready log
PathLike = str | os.PathLike[str]
_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def ready_shards(
    dataset_dir: PathLike,
    split: str = "train",
    timeout: float | None = None,
    *,
    worker: int | None = None,
    num_workers: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> Iterator[str]:
    """Local paths of ``split``'s shards, in the order they become ready.

    Ends once every shard of the split (of this node's share) is ready and
    handed out. Waits for the dataset folder and its manifest to appear, so the
    trainer may start before the downloader. ``timeout`` bounds each wait for
    the next shard (None: no limit); past it :class:`NotReadyError` says what
    is missing. A fatal error the downloader reported raises
    :class:`SidecarError` with its message (after the shards already ready).

    Nodes: node ``rank`` of ``world_size`` takes the split's shards whose index
    in the manifest's order ``i`` satisfies ``i % world_size == rank`` (the
    split WebDataset's ``split_by_node`` makes of the list ``shard_urls``
    returns; ready order differs between machines, the manifest's does not).
    Defaults: ``RANK``/``WORLD_SIZE`` from the environment when both are set.

    Workers: worker ``w`` of ``W`` takes the node's shards whose index in ready
    order ``j`` satisfies ``j % W == w`` (WebDataset's ``split_by_worker``), so
    DataLoader workers each read their own shards, none twice. Defaults:
    ``torch.utils.data.get_worker_info()`` when torch is loaded, else 0 of 1;
    worker info is looked up when iteration starts, i.e. in the worker.
    """
    folder = Path(os.path.abspath(dataset_dir))
    _check_timeout(timeout)
    _check_poll(poll_interval)
    node = _node(rank, world_size)
    explicit = nodes.check_index(worker, num_workers, "worker", "num_workers")
    return _iterate(folder, split, timeout, explicit, node, poll_interval)


def _iterate(
    folder: Path,
    split: str,
    timeout: float | None,
    explicit: tuple[int, int] | None,
    node: tuple[int, int],
    poll_interval: float,
) -> Iterator[str]:
    worker, num_workers = explicit or _torch_worker()
    watch = Watch(folder, split, *node)
    handed = 0  # how many of ``watch.order`` this iterator has looked at
    while True:
        started = time.monotonic()
        found: str | None = None
        while found is None:
            watch.poll()
            while handed < len(watch.order) and found is None:
                if handed % num_workers == worker:
                    found = watch.order[handed]
                handed += 1
            if found is not None:
                break
            if watch.done:
                return
            watch.raise_if_failed()
            _pause(started, timeout, poll_interval, watch)
        yield str(watch.place.root / found)


def wait_ready(
    dataset_dir: PathLike,
    split: str = "train",
    shards: int | None = None,
    timeout: float | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> ReadyStatus:
    """Block until ``shards`` shards of ``split`` (None: all) are ready.

    Raises :class:`NotReadyError` after ``timeout`` seconds (None: no limit)
    naming what is missing, and :class:`SidecarError` if the downloader
    reported a fatal error first.
    """
    folder = Path(os.path.abspath(dataset_dir))
    _check_timeout(timeout)
    _check_poll(poll_interval)
    if shards is not None and shards < 1:
        raise UsageError(str(shards), "the number of shards to wait for must be at least 1")
    watch = Watch(folder, split)
    started = time.monotonic()
    while True:
        watch.poll()
        if watch.wanted is not None:
            if shards is not None and shards > len(watch.wanted):
                raise UsageError(
                    str(shards), f"split {split!r} has only {len(watch.wanted)} shards"
                )
            if len(watch.order) >= (shards or len(watch.wanted)):
                return watch.status()
        watch.raise_if_failed()
        _pause(started, timeout, poll_interval, watch)


def ready_now(dataset_dir: PathLike, split: str = "train") -> ReadyStatus:
    """What of ``split`` is ready at this moment (no waiting)."""
    folder = Path(os.path.abspath(dataset_dir))
    if not folder.exists():
        raise StorageError(folder, "no such folder")
    watch = Watch(folder, split)
    watch.poll()
    if watch.wanted is None and not (
        (folder / manifest.MANIFEST_NAME).exists() or watch.place.state.is_dir()
    ):
        raise ManifestError(folder, "not a torrentds dataset folder (no torrentds.json)")
    return watch.status()


def shard_urls(
    dataset_dir: PathLike, split: str = "train", timeout: float | None = None
) -> list[str]:
    """Every shard of ``split``, in the manifest's order: the list for
    ``webdataset.WebDataset(...)``.

    Waits until all of them are ready (as :func:`wait_ready`), so the list never
    names a shard that is missing or unverified: a partial list would train on
    part of the split without a word. To start on the first shard, iterate
    :func:`ready_shards` instead.
    """
    status = wait_ready(dataset_dir, split, None, timeout)
    return [str(Path(status.root) / p) for p in status.shards]


def shard_pattern(dataset_dir: PathLike, split: str = "train") -> str:
    """The brace pattern of ``split``'s shards, from the manifest, e.g.
    ``/data/tiny/val/val-{000000..000001}.tar`` (a single shard: its path).

    It names every shard of the split whether or not it is ready yet: wait
    first (``wait_ready``, ``torrentds wait --all``). Raises if the shard
    names do not form one contiguous range (use :func:`shard_urls` then).
    """
    folder = Path(os.path.abspath(dataset_dir))
    paths = _manifest_paths(folder, split)
    return str(folder / _brace(paths, folder / manifest.MANIFEST_NAME, split))


# -- internals -----------------------------------------------------------------


def _manifest_paths(folder: Path, split: str) -> list[str]:
    doc = manifest.load(folder)
    paths = [s.path for s in doc.shards_of(split)]
    if not paths:
        raise UsageError(folder / manifest.MANIFEST_NAME, no_split(split, doc.splits))
    return paths


def _brace(paths: list[str], where: Path, split: str) -> str:
    """One ``prefix{first..last}suffix`` pattern that expands to exactly ``paths``."""
    if any(c in p for p in paths for c in "{}") or any(c in str(where) for c in "{}"):
        raise ManifestError(where, f"split {split!r}: a path holds a brace; use shard_urls")
    if len(paths) == 1:
        return paths[0]
    matches = [_LAST_NUMBER.match(p) for p in paths]
    parts = [m.groups() for m in matches if m is not None]
    prefixes = {p for p, _, _ in parts}
    suffixes = {s for _, _, s in parts}
    widths = {len(n) for _, n, _ in parts}
    numbers = [int(n) for _, n, _ in parts]
    first = numbers[0] if numbers else 0
    if (
        len(parts) != len(paths)
        or len(prefixes) != 1
        or len(suffixes) != 1
        or len(widths) != 1
        or numbers != list(range(first, first + len(paths)))
    ):
        raise ManifestError(
            where,
            f"split {split!r}: shard names do not form one numbered range "
            f"({paths[0]} … {paths[-1]}); use shard_urls",
        )
    prefix, low, suffix = parts[0]
    high = parts[-1][1]
    return f"{prefix}{{{low}..{high}}}{suffix}"


def _pause(started: float, timeout: float | None, interval: float, watch: Watch) -> None:
    """Sleep one poll interval, or raise if the wait has lasted ``timeout``."""
    if timeout is None:
        time.sleep(interval)
        return
    left = started + timeout - time.monotonic()
    if left <= 0:
        raise watch.timeout_error(timeout)
    time.sleep(min(interval, left))


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout >= 0:  # also refuses NaN
        raise UsageError(str(timeout), "timeout must be >= 0 seconds (or None)")


def _check_poll(interval: float) -> None:
    if not interval > 0:
        raise UsageError(str(interval), "poll interval must be positive")


def _node(rank: int | None, world_size: int | None) -> tuple[int, int]:
    explicit = nodes.check_index(rank, world_size, "rank", "world_size")
    if explicit is not None:
        return explicit
    env_rank, env_size = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if env_rank is None or env_size is None:
        return 0, 1
    try:
        from_env = nodes.check_index(int(env_rank), int(env_size), "RANK", "WORLD_SIZE")
    except ValueError as exc:
        raise UsageError(
            f"RANK={env_rank}, WORLD_SIZE={env_size}", "not integers in the environment"
        ) from exc
    assert from_env is not None
    return from_env


def _torch_worker() -> tuple[int, int]:
    """DataLoader worker id and count, when this process is one (torch loaded)."""
    if "torch" not in sys.modules:
        return 0, 1
    data = importlib.import_module("torch.utils.data")
    info = data.get_worker_info()
    if info is None:
        return 0, 1
    return int(info.id), int(info.num_workers)
