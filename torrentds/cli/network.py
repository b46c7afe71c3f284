"""The options ``get`` and ``seed`` share, declared once and handed to the
command as one ``NetworkParams``: its session options and its --listen/--peer
check (exit 2 before any work)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from torrentds import options
from torrentds.cli.base import SIZE, float_or_inf
from torrentds.errors import UsageError
from torrentds.torrent import addresses


@dataclass(frozen=True)
class NetworkParams:
    """What the shared options of ``get`` and ``seed`` were given, as one value."""

    listen: str | None
    peers: tuple[str, ...]
    dht: bool
    lsd: bool
    upnp: bool
    utp: bool
    max_upload: int
    max_download: int
    seed_hours: str | None
    seed_ratio: float | None
    as_json: bool

    def session(self) -> options.SessionOptions:
        return options.SessionOptions(**options.same_named(self, options.SessionOptions))

    def hours(self, default: float) -> float:
        """--seed-hours as a number (``inf`` allowed), ``default`` when not given."""
        return float_or_inf(self.seed_hours) if self.seed_hours is not None else default

    def check(self) -> None:
        """Bad --listen/--peer values are a usage error (exit 2) before any work;
        a host name must resolve now (libtorrent dials and binds IPs only)."""
        try:
            if self.listen is not None:
                addresses.listen_interface(self.listen)
        except UsageError as exc:
            raise UsageError(f"--listen {self.listen}", exc.reason) from exc
        for peer in self.peers:
            try:
                addresses.peer_address(peer)
            except UsageError as exc:
                raise UsageError(f"--peer {peer}", exc.reason) from exc


def network_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Options shared by ``get`` and ``seed``: where to listen, whom to find, how
    long to seed, how to print. ``fn`` receives them as one ``net: NetworkParams``."""
    names = [f.name for f in dataclasses.fields(NetworkParams)]

    @functools.wraps(fn)
    def with_params(**kwargs: Any) -> None:
        net = NetworkParams(**{name: kwargs.pop(name) for name in names})
        fn(net=net, **kwargs)

    opts = [
        click.option(
            "--listen",
            default=None,
            metavar="HOST:PORT",
            help="Address to accept peers on; a port in use is an error (port 0: any). "
            "Default: 0.0.0.0:6881, or the next free port if another client has it.",
        ),
        click.option(
            "--peer",
            "peers",
            multiple=True,
            metavar="HOST:PORT",
            help="Connect to this peer (repeatable; works with no tracker).",
        ),
        click.option(
            "--dht/--no-dht",
            default=False,
            show_default=True,
            help="Find peers through the DHT (contacts DHT bootstrap nodes).",
        ),
        click.option(
            "--lsd/--no-lsd",
            default=False,
            show_default=True,
            help="Local Service Discovery: find peers by LAN multicast.",
        ),
        click.option(
            "--upnp/--no-upnp",
            default=False,
            show_default=True,
            help="Open the listen port on the router with UPnP/NAT-PMP.",
        ),
        click.option(
            "--utp/--no-utp",
            default=False,
            show_default=True,
            help="Allow uTP (off: TCP only, much faster on a LAN).",
        ),
        click.option(
            "--max-upload",
            type=SIZE,
            default="0",
            metavar="RATE",
            help="Upload limit in bytes/s, e.g. 50M (LAN peers too; 0: none).",
        ),
        click.option(
            "--max-download",
            type=SIZE,
            default="0",
            metavar="RATE",
            help="Download limit in bytes/s, e.g. 50M (0: none).",
        ),
        click.option(
            "--seed-hours",
            default=None,
            metavar="H",
            help="Seed this long after completion (a float or inf; 0: exit at once). "
            "Default: 0 for get, inf for seed.",
        ),
        click.option(
            "--seed-ratio",
            type=float,
            default=None,
            metavar="R",
            help="Stop seeding once this run uploaded R × the dataset size.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="One JSON object per line (events) instead of a progress bar.",
        ),
    ]
    command = with_params
    for opt in reversed(opts):
        command = opt(command)
    return command
