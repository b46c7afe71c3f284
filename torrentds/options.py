"""What a get and a session are asked to do, with the checks every front end
shares (command line, TOML config, HTTP API); standard library only.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torrentds.dataset import nodes
from torrentds.errors import UsageError
from torrentds.swarm import order, peerindex

DEFAULT_LISTEN = "0.0.0.0:6881"


@dataclass(frozen=True)
class SessionOptions:
    """How the session talks to the network. The defaults phone no one."""

    # None: DEFAULT_LISTEN, or the next free port when another client has it
    # (two gets on one machine). A port asked for is that port or an error.
    listen: str | None = None
    upnp: bool = False  # UPnP and NAT-PMP
    dht: bool = False
    dht_bootstrap: tuple[str, ...] = ()
    lsd: bool = False
    max_upload: int = 0  # bytes/s, 0 = unlimited; applies to LAN/loopback peers too
    max_download: int = 0
    utp: bool = False


@dataclass(frozen=True)
class GetOptions:
    source: str
    directory: Path = Path("data")
    seed_hours: float = 0.0
    seed_ratio: float | None = None
    peers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    timeout: float | None = None
    default_trackers: bool = True
    rank: int | None = None
    world_size: int | None = None
    only_mine: bool = False
    window: int | None = None  # None: order.Ordering's default
    slice: str | None = None  # "I/K": this is peer I of K fetching the same data
    session: SessionOptions = field(default_factory=SessionOptions)


@dataclass(frozen=True)
class JobOptions:
    save_path: Path  # the folder that receives NAME/
    seed_hours: float = 0.0
    seed_ratio: float | None = None
    peers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    timeout: float | None = None
    progress_interval: float = 2.0
    resume_interval: float = 30.0
    reconnect_interval: float = 10.0
    seeding_only: bool = False  # ``seed``: the data is expected to be complete
    skip_check: bool = False
    layout_checked: bool = False  # the caller refused symlinks under DIR for these files
    ordering: order.Ordering = field(default_factory=order.Ordering)


def same_named(source: object, target: type[Any]) -> dict[str, Any]:
    """The values of ``source``'s attributes named as dataclass ``target``'s fields
    (an option that passes through a layer keeps its name)."""
    return {
        f.name: getattr(source, f.name)
        for f in dataclasses.fields(target)
        if hasattr(source, f.name)
    }


def ordering_of(opts: GetOptions, env: Mapping[str, str] | None = None) -> order.Ordering:
    """The fetch order a get's options ask for; UsageError if they contradict.

    With neither ``slice`` nor ``rank``, the launcher's environment (``env``,
    default ``os.environ``) may say which peer of how many this is: a slice then."""
    nodes.check_index(opts.rank, opts.world_size)
    if opts.only_mine and opts.rank is None:
        raise UsageError("--only-mine", "needs --rank and --world-size")
    if opts.window is not None and opts.window < 1:
        raise UsageError(str(opts.window), "--window must be at least 1")
    slice_ = _slice(opts.slice) if opts.slice is not None else None
    source = f"--slice {opts.slice}"
    if slice_ is None and opts.rank is None:
        found = peerindex.from_environment(os.environ if env is None else env)
        if found is not None:
            slice_, source = order.Slice(found.index, found.count), found.source
    alone = slice_ is not None and slice_.count == 1
    if alone:
        slice_ = None  # 0/1: the whole torrent, a plain get
    if slice_ is not None and opts.rank is not None:
        raise UsageError(
            f"--slice {opts.slice}", "orders by piece, --rank by shard: give one of them"
        )
    # With no index at all, the swarm deals one (swarm.membership).
    from_swarm = slice_ is None and opts.rank is None and not alone
    shared = slice_ is not None or from_swarm  # every peer fetches the same window
    return order.Ordering(
        rank=opts.rank,
        world_size=opts.world_size,
        only_mine=opts.only_mine,
        window=opts.window or (order.SLICE_WINDOW if shared else order.Ordering.window),
        slice=slice_,
        slice_source=source if slice_ is not None else "",
        from_swarm=from_swarm,
    )


def _slice(text: str) -> order.Slice:
    index, sep, count = text.partition("/")
    try:
        out = order.Slice(int(index), int(count)) if sep else None
    except ValueError:
        out = None
    if out is None or not 0 <= out.index < out.count:
        raise UsageError(text, "--slice wants I/K with 0 <= I < K, e.g. 2/6")
    return out


def check_seed_limits(hours: float, ratio: float | None) -> None:
    if math.isnan(hours) or hours < 0:
        raise UsageError(str(hours), "--seed-hours must be >= 0 (or inf)")
    if ratio is not None and (math.isnan(ratio) or ratio < 0):
        raise UsageError(str(ratio), "--seed-ratio must be >= 0")
