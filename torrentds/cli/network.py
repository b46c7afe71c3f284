"""The network options ``get`` and ``seed`` share (declared once), the session
options they make, and the --listen/--peer check (exit 2 before any work)."""

from __future__ import annotations

from collections.abc import Callable

import click

from torrentds import options
from torrentds.cli.base import SIZE
from torrentds.errors import UsageError
from torrentds.torrent import addresses


def session_options(
    listen: str | None,
    upnp: bool,
    dht: bool,
    lsd: bool,
    max_upload: int,
    max_download: int,
    utp: bool,
) -> options.SessionOptions:
    return options.SessionOptions(
        listen=listen,
        upnp=upnp,
        dht=dht,
        lsd=lsd,
        max_upload=max_upload,
        max_download=max_download,
        utp=utp,
    )


def network_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Options shared by ``get`` and ``seed``: where to listen, whom to find."""
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
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def check_addresses(listen: str | None, peers: tuple[str, ...]) -> None:
    """Bad --listen/--peer values are a usage error (exit 2) before any work;
    a host name must resolve now (libtorrent dials and binds IPs only)."""
    try:
        if listen is not None:
            addresses.listen_interface(listen)
    except UsageError as exc:
        raise UsageError(f"--listen {listen}", exc.reason) from exc
    for peer in peers:
        try:
            addresses.peer_address(peer)
        except UsageError as exc:
            raise UsageError(f"--peer {peer}", exc.reason) from exc
