"""`get` and `seed`: one job on a libtorrent session, its events printed as a
progress line, plain lines or JSON, and signals turned into exit codes."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import click

from torrentds import options
from torrentds.cli.base import (
    run_command,
    urls_option,
)
from torrentds.cli.network import NetworkParams, network_options
from torrentds.cli.render import Renderer, job_renderer, print_summary
from torrentds.cli.signals import Stop, exit_if_interrupted, stop_on_signals
from torrentds.service import fetch
from torrentds.sidecar import config as sidecar_config
from torrentds.sidecar import server
from torrentds.sidecar.facade import Sidecar
from torrentds.swarm import events


@click.command()
@click.argument("source")
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default="data",
    show_default=True,
    help="Folder that receives the dataset folder.",
)
@urls_option("--web-seed", "web_seeds", "Extra BEP 19 web seed (repeatable).")
@urls_option("--tracker", "trackers", "Extra tracker announce URL (repeatable).")
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Give up (exit 1) if not complete after this long.",
)
@click.option(
    "--no-default-trackers",
    is_flag=True,
    help="A bare info-hash gets no Academic Torrents trackers (closed clusters).",
)
@click.option(
    "--rank",
    type=int,
    default=None,
    help="This node's rank: fetch its own shards (index %% world size == rank) first.",
)
@click.option("--world-size", type=int, default=None, help="Number of training nodes.")
@click.option(
    "--only-mine", is_flag=True, help="With --rank: fetch (and seed) only this node's shards."
)
@click.option(
    "--window",
    type=int,
    default=None,
    help="How many shards at the head of this peer's order get top priority "
    "[default: 2, the window every peer shares; 3 with --rank].",
)
@click.option(
    "--slice",
    "slice_",
    default=None,
    metavar="I/K",
    help="This is peer I of K fetching the same data (e.g. a node's rank and the node "
    "count): every peer fetches the same window of shards in the manifest's order, "
    "taking the I-th of K parts of each shard itself and the rest from the other "
    "peers. The origin then sends each piece about once, and the first shard arrives "
    "early. Without it, the launcher's environment (Slurm, torchrun, TORRENTDS_SLICE) "
    "or else the swarm itself deals the index. Not with --rank.",
)
@click.option(
    "--api",
    "api_listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve the sidecar's HTTP API here while this get runs (e.g. 127.0.0.1:8700).",
)
@click.option(
    "--api-token",
    default=None,
    metavar="TOKEN",
    help="Bearer token the API requires (needed beyond loopback; default $TORRENTDS_API_TOKEN).",
)
@network_options
def get(
    source: str,
    directory: Path,
    web_seeds: tuple[str, ...],
    trackers: tuple[str, ...],
    timeout: float | None,
    no_default_trackers: bool,
    rank: int | None,
    world_size: int | None,
    only_mine: bool,
    window: int | None,
    slice_: str | None,
    api_listen: str | None,
    api_token: str | None,
    net: NetworkParams,
) -> None:
    """Download SOURCE, verify every piece and shard, then seed as asked.

    SOURCE is a magnet link, a .torrent path, an http(s) URL of a .torrent or
    a 40-hex info-hash. Each shard is handed on (DIR/NAME/.torrentds/ready.jsonl)
    as soon as its pieces and sha256 are verified. Ctrl-C or SIGTERM saves
    resume data and exits 130 or 143 before completion (0 once complete);
    running the same command again resumes.
    With --api, the sidecar's HTTP API (status, shards, metrics) is served
    while it runs.
    """
    opts = options.GetOptions(
        source=source,
        directory=directory,
        seed_hours=net.hours(0.0),
        seed_ratio=net.seed_ratio,
        peers=net.peers,
        web_seeds=web_seeds,
        trackers=trackers,
        timeout=timeout,
        default_trackers=not no_default_trackers,
        rank=rank,
        world_size=world_size,
        only_mine=only_mine,
        window=window,
        slice=slice_,
        session=net.session(),
    )

    def job(printer: Renderer, stop: Stop) -> events.JobResult:
        if api_listen is None:
            return fetch.get(opts, printer, stop)
        token = api_token or os.environ.get(sidecar_config.TOKEN_ENV) or None
        return _get_with_api(opts, api_listen, token, printer, stop)

    _run(net, job)


def _get_with_api(
    opts: options.GetOptions,
    listen: str,
    token: str | None,
    printer: Renderer,
    stop: threading.Event,
) -> events.JobResult:
    """``get --api``: the same job, run in a one-dataset sidecar that serves the API."""
    api = server.ApiServer(listen, token)  # a refused or busy address fails before any work
    conf = sidecar_config.SidecarConfig(
        session=opts.session, api=listen, api_token=token, data_root=(opts.directory,)
    )
    try:
        sc = Sidecar(conf, printer.log)

        def serving() -> None:
            api.start(sc)
            printer.api(api.url)

        return sc.run_get(opts, printer, stop, on_running=serving, on_stopping=api.close)
    finally:
        api.close()


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.argument("torrent")
@click.option(
    "--skip-check",
    is_flag=True,
    help="Trust the data without hashing it first (a folder `create` just made).",
)
@network_options
def seed(
    folder: Path,
    torrent: str,
    skip_check: bool,
    net: NetworkParams,
) -> None:
    """Seed the dataset FOLDER described by TORRENT (the origin of a swarm).

    The folder is hash-checked against the torrent first. Seeds until
    --seed-hours or --seed-ratio is reached (default: until stopped).
    """
    opts = fetch.SeedOptions(
        folder=folder,
        torrent=Path(torrent),
        seed_hours=net.hours(math.inf),
        seed_ratio=net.seed_ratio,
        skip_check=skip_check,
        peers=net.peers,
        session=net.session(),
    )
    _run(net, lambda printer, stop: fetch.seed(opts, printer, stop))


def _run(net: NetworkParams, job: Callable[[Renderer, Stop], events.JobResult]) -> None:
    """One job with the shared handling: addresses checked, signals caught,
    events printed, the summary, and the exit code of an interrupted run."""

    def run() -> None:
        net.check()
        with stop_on_signals() as stop, job_renderer(net.as_json) as printer:
            result = job(printer, stop)
        if not net.as_json:
            print_summary(result)
        exit_if_interrupted(stop, printer.reached_seeding, result)

    run_command(run, json_errors=net.as_json)
