"""`get` and `seed`: one job on a libtorrent session, its events printed as a
progress line, plain lines or JSON, and signals turned into exit codes."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from torrentds import options
from torrentds.cli.base import (
    SIZE,
    err_console,
    float_or_inf,
    human,
    run_job_command,
)
from torrentds.errors import UsageError
from torrentds.service import fetch
from torrentds.sidecar import config as sidecar_config
from torrentds.sidecar import server
from torrentds.sidecar.facade import Sidecar
from torrentds.swarm import events
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


class Stop(threading.Event):
    """Set by SIGTERM/SIGINT; ``signum`` says which came first."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """SIGTERM/SIGINT set the event: the job saves resume data and returns."""
    stop = Stop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        if stop.signum is None:
            stop.signum = signum
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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


def exit_if_interrupted(stop: Stop, printer: EventPrinter, result: events.JobResult) -> None:
    """A signal before the job completed exits 128 + its number (130 SIGINT, 143
    SIGTERM), as a shell reports it, so a script can tell an interrupted run from a
    finished one. Once complete (seeding), stopping is how a run ends: exit 0."""
    if stop.signum is None or not result.stopped or printer.reached_seeding:
        return
    name = signal.Signals(stop.signum).name
    click.echo(
        f"torrentds: interrupted ({name}) before completion; resume data saved, "
        "run the same command again to resume",
        err=True,
    )
    sys.exit(128 + stop.signum)


class EventPrinter:
    """Prints job events: JSON lines, a live bar on a TTY, or plain milestones."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # "completed" (get) or "seeding" (a seed's check done, or a damaged folder's)
        self.reached_seeding = False
        self.live = not as_json and err_console.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> EventPrinter:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn(
                    "↓{task.fields[down]}/s ↑{task.fields[up]}/s "
                    "peers {task.fields[peers]} shards {task.fields[shards]}"
                ),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "starting", total=None, down="0", up="0", peers=0, shards="0/?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, event: events.JobEvent) -> None:
        if isinstance(event, events.Failed):
            return  # raised to the command, which prints it once (``run_job_command``)
        if isinstance(event, events.Completed | events.Seeding):
            self.reached_seeding = True
        if self.as_json:
            self._json(events.as_json(event))
        elif isinstance(event, events.Progress):
            if self._progress is not None:
                self._progress.update(
                    self._task,
                    description=event.state,
                    completed=event.done,
                    total=event.total or None,
                    down=human(event.down_rate),
                    up=human(event.up_rate),
                    peers=event.peers,
                    shards=f"{event.shards_ready}/{event.shards_total}",
                )
        elif isinstance(event, events.Started):
            err_console.print(f"torrentds: {event.infohash} listening on port {event.listen_port}")
        elif isinstance(event, events.Metadata):
            size = human(event.bytes)
            err_console.print(f"torrentds: {event.name}: {size} in {event.files} files")
        elif isinstance(event, events.Warned):
            err_console.print(f"torrentds: warning: {event.message}")
        elif isinstance(event, events.Completed):
            err_console.print(f"torrentds: complete, every shard verified: {event.dataset_dir}")
        elif isinstance(event, events.Seeding):
            hours = event.hours
            until = "until stopped" if hours is None else f"for up to {hours:g} h"
            err_console.print(f"torrentds: seeding {until}")

    def api(self, url: str) -> None:
        """The sidecar API of ``get --api`` is up."""
        if self.as_json:
            self._json({"event": "api", "url": url})
        else:
            err_console.print(f"torrentds: API on {url}")

    def log(self, doc: dict[str, Any]) -> None:
        """The sidecar's log of ``get --api``: events of datasets added through the API."""
        if self.as_json:
            self._json(doc)
        elif doc.get("event") in ("warning", "error"):
            err_console.print(f"torrentds: {doc['event']}: [{doc.get('dataset')}] {doc['message']}")

    def _json(self, doc: dict[str, Any]) -> None:
        click.echo(json.dumps({**doc, "time": round(time.time(), 3)}, sort_keys=True))


def print_summary(result: events.JobResult) -> None:
    click.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.name} "
        f"downloaded {human(result.downloaded)}, uploaded {human(result.uploaded)}, "
        f"ratio {result.ratio:.2f}, seeded {result.seconds_seeded:.0f} s, "
        f"shards {result.shards_ready}/{result.shards_total}"
    )


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
@click.option(
    "--web-seed",
    "web_seeds",
    multiple=True,
    metavar="URL",
    help="Extra BEP 19 web seed (repeatable).",
)
@click.option(
    "--tracker",
    "trackers",
    multiple=True,
    metavar="URL",
    help="Extra tracker announce URL (repeatable).",
)
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
    "[default: 3]. Not with --slice.",
)
@click.option(
    "--slice",
    "slice_",
    default=None,
    metavar="I/K",
    help="This is peer I of K fetching the same data (e.g. a node's rank and the node "
    "count): take the I-th of every K runs of pieces (4 MiB each) first, the rest from "
    "the other peers. The origin then sends each piece about once. Not with --rank "
    "or --window.",
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
    listen: str | None,
    peers: tuple[str, ...],
    dht: bool,
    lsd: bool,
    upnp: bool,
    utp: bool,
    max_upload: int,
    max_download: int,
    seed_hours: str | None,
    seed_ratio: float | None,
    as_json: bool,
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
        seed_hours=float_or_inf(seed_hours) if seed_hours is not None else 0.0,
        seed_ratio=seed_ratio,
        peers=peers,
        web_seeds=web_seeds,
        trackers=trackers,
        timeout=timeout,
        default_trackers=not no_default_trackers,
        rank=rank,
        world_size=world_size,
        only_mine=only_mine,
        window=window,
        slice=slice_,
        session=session_options(listen, upnp, dht, lsd, max_upload, max_download, utp),
    )

    def run() -> None:
        check_addresses(listen, peers)
        with stop_on_signals() as stop, EventPrinter(as_json) as printer:
            if api_listen is None:
                result = fetch.get(opts, printer, stop)
            else:
                token = api_token or os.environ.get(sidecar_config.TOKEN_ENV) or None
                result = _get_with_api(opts, api_listen, token, printer, stop)
        if not as_json:
            print_summary(result)
        exit_if_interrupted(stop, printer, result)

    run_job_command(run, as_json)


def _get_with_api(
    opts: options.GetOptions,
    listen: str,
    token: str | None,
    printer: EventPrinter,
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
    listen: str | None,
    peers: tuple[str, ...],
    dht: bool,
    lsd: bool,
    upnp: bool,
    utp: bool,
    max_upload: int,
    max_download: int,
    seed_hours: str | None,
    seed_ratio: float | None,
    as_json: bool,
) -> None:
    """Seed the dataset FOLDER described by TORRENT (the origin of a swarm).

    The folder is hash-checked against the torrent first. Seeds until
    --seed-hours or --seed-ratio is reached (default: until stopped).
    """
    hours = float_or_inf(seed_hours) if seed_hours is not None else math.inf
    opts = fetch.SeedOptions(
        folder=folder,
        torrent=Path(torrent),
        seed_hours=hours,
        seed_ratio=seed_ratio,
        skip_check=skip_check,
        peers=peers,
        session=session_options(listen, upnp, dht, lsd, max_upload, max_download, utp),
    )

    def run() -> None:
        check_addresses(listen, peers)
        with stop_on_signals() as stop, EventPrinter(as_json) as printer:
            result = fetch.seed(opts, printer, stop)
        if not as_json:
            print_summary(result)
        exit_if_interrupted(stop, printer, result)

    run_job_command(run, as_json)
