"""click commands: a thin layer over ``service``. The only place that prints.

Every ``TorrentdsError`` becomes one line on stderr and its exit code; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
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
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from torrentds import __version__, options, service
from torrentds.errors import TorrentdsError, UsageError
from torrentds.progress import Advance, Reporter, SilentReporter
from torrentds.sidecar import config as sidecar_config
from torrentds.sidecar import server
from torrentds.sidecar.facade import Sidecar
from torrentds.swarm import transfer
from torrentds.torrent import addresses
from torrentds.units import parse_size


class SizeType(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()
# Plain lines: names and paths may hold "[...]" or ":100:" (not markup, not emoji),
# and a message is one line however narrow the terminal (logs are grepped).
_err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)


class BarReporter:
    """Rich progress bars on stderr, one per stage; nothing when not a TTY."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def stage(self, label: str, total: int) -> Advance:
        task = self._progress.add_task(label, total=total)

        def advance(n: int) -> None:
            self._progress.advance(task, n)

        return advance


@contextmanager
def _reporter(enabled: bool) -> Iterator[Reporter]:
    if not enabled or not _err.is_terminal:
        yield SilentReporter()
        return
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as progress:
        yield BarReporter(progress)


def _run(fn: Callable[[], None]) -> None:
    try:
        fn()
    except TorrentdsError as exc:
        click.echo(f"torrentds: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("torrentds: interrupted", err=True)
        sys.exit(130)


def _print_json(obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    click.echo(json.dumps(obj, indent=None, sort_keys=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torrentds")
def main() -> None:
    """Distribute ML datasets as verified WebDataset shards over BitTorrent.

    \b
    torrentds create DATA_DIR      pack a dataset and make its .torrent
    torrentds info SOURCE          show what a .torrent or magnet holds
    torrentds verify DIR           check a dataset folder offline
    torrentds get SOURCE           download, verify each shard, seed
    torrentds seed DIR TORRENT     seed a dataset folder (a swarm's origin)
    torrentds wait DIR             block until shards of a split are verified
    torrentds urls DIR             print verified shard paths, or the brace pattern
    torrentds sidecar --config F   serve several datasets from one session, with an HTTP API
    torrentds status               what a running sidecar is doing
    """


@main.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option(
    "--shards-dir",
    type=click.Path(path_type=Path),
    help="Where packed shards go (the torrent's root). Default: DATA_DIR-wds.",
)
@click.option(
    "--shard-size",
    type=SIZE,
    default="256M",
    show_default=True,
    help="Target size of a packed shard.",
)
@click.option(
    "--piece-size",
    type=SIZE,
    help="Torrent piece size (power of two). Default: 1,000-10,000 pieces within 256 KiB-16 MiB.",
)
@click.option(
    "--tracker",
    "trackers",
    multiple=True,
    metavar="URL",
    help="Announce URL, each its own tier (repeatable).",
)
@click.option(
    "--no-default-trackers", is_flag=True, help="Leave out the Academic Torrents tracker tiers."
)
@click.option(
    "--web-seed",
    "web_seeds",
    multiple=True,
    metavar="URL",
    help="BEP 19 web seed, e.g. an S3 or nginx URL ending in / (repeatable).",
)
@click.option(
    "--no-check-web-seeds", is_flag=True, help="Do not test web seeds with a Range request."
)
@click.option("--private", is_flag=True, help="Private torrent: no DHT, PEX or LSD.")
@click.option("--comment", help="Comment stored in the .torrent.")
@click.option("--name", help="Torrent name (the folder peers receive). Default: DATA_DIR's name.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the .torrent. Default: torrents/NAME.torrent.",
)
@click.option("--force", is_flag=True, help="Replace an existing .torrent or shards folder.")
@click.option(
    "--creation-date",
    is_flag=True,
    help="Store the creation date (makes the .torrent differ between runs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def create(
    data_dir: Path,
    shards_dir: Path | None,
    shard_size: int,
    piece_size: int | None,
    trackers: tuple[str, ...],
    no_default_trackers: bool,
    web_seeds: tuple[str, ...],
    no_check_web_seeds: bool,
    private: bool,
    comment: str | None,
    name: str | None,
    output: Path | None,
    force: bool,
    creation_date: bool,
    as_json: bool,
) -> None:
    """Pack DATA_DIR into WebDataset shards and write its manifest and .torrent.

    DATA_DIR is an ImageFolder tree (SPLIT/CLASS/IMAGE), Tiny-ImageNet-200's own
    layout, a folder that already holds *.tar shards (adopted as they are), or
    any folder of files (generic samples keyed by path without extension).
    Prints the info-hash and the magnet link.
    """
    opts = service.CreateOptions(
        data_dir=data_dir,
        shards_dir=shards_dir,
        shard_size=shard_size,
        piece_size=piece_size,
        trackers=trackers,
        default_trackers=not no_default_trackers,
        web_seeds=web_seeds,
        check_web_seeds=not no_check_web_seeds,
        private=private,
        comment=comment,
        name=name,
        output=output,
        force=force,
        creation_date=creation_date,
    )

    def run() -> None:
        with _reporter(not as_json) as rep:
            result = service.create(opts, rep)
        for warning in result.warnings:
            click.echo(f"torrentds: warning: {warning}", err=True)
        if as_json:
            _print_json(result)
            return
        splits = ", ".join(
            f"{k}: {v['shards']} shards / {v['samples']} samples" for k, v in result.splits.items()
        )
        click.echo(f"dataset   {result.dataset_dir} ({result.layout}; {splits})")
        click.echo(
            f"torrent   {result.torrent} ({_human(result.bytes)}, "
            f"{result.pieces} pieces of {_human(result.piece_size)})"
        )
        click.echo(f"infohash  {result.infohash}")
        click.echo(f"magnet    {result.magnet}")

    _run(run)


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(source: str, as_json: bool) -> None:
    """Show what SOURCE holds: a .torrent path, a magnet link or an http(s) URL."""

    def run() -> None:
        t = service.info(source)
        if as_json:
            _print_json(t)
            return
        click.echo(f"name       {t.name}")
        click.echo(f"infohash   {t.infohash}")
        if t.infohash_v2 and t.infohash_v2 != t.infohash:
            click.echo(f"v2 hash    {t.infohash_v2}")
        if t.has_metadata or t.infohash_v2:  # a btih-only magnet may name any kind
            click.echo(f"version    {t.version}")
        if t.has_metadata:
            click.echo(f"size       {_human(t.size)} ({t.size} bytes)")
            click.echo(f"pieces     {t.piece_count} × {_human(t.piece_size)}")
            click.echo(f"private    {'yes' if t.private else 'no'}")
            if t.comment:
                click.echo(f"comment    {t.comment}")
        else:
            click.echo("files      unknown until metadata is fetched from peers (magnet)")
        for i, tier in enumerate(t.trackers):
            click.echo(f"tier {i:<5} {' '.join(tier)}")
        for url in t.web_seeds:
            click.echo(f"web seed   {url}")
        for path, size in t.files:
            click.echo(f"  {size:>14,}  {path}")
        click.echo(f"magnet     {t.magnet}")

    _run(run)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--torrent",
    type=click.Path(path_type=Path),
    help="The .torrent to check pieces against. Default: FOLDER/.torrentds/"
    "dataset.torrent when present.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify(folder: Path, torrent: Path | None, as_json: bool) -> None:
    """Check FOLDER offline: every piece, every shard's sha256 and structure.

    Exits 1 on any mismatch, naming the shard and what differs.
    """

    def run() -> None:
        with _reporter(not as_json) as rep:
            report = service.verify(folder, torrent, rep)
        if as_json:
            _print_json({**dataclasses.asdict(report), "ok": report.ok})
        else:
            if report.torrent:
                click.echo(f"pieces   {report.pieces_checked} checked against {report.torrent}")
            else:
                click.echo("pieces   not checked (no .torrent; pass --torrent)")
            for note in report.notes:
                click.echo(f"note     {note}")
            for s in report.splits:
                click.echo(
                    f"{s.split:<8} {s.shards} shards, {s.samples} samples, "
                    f"{s.classes_seen} classes seen, extensions {','.join(s.extensions)}"
                )
            for problem in report.problems:
                click.echo(f"FAIL     {problem}", err=True)
            click.echo("OK" if report.ok else f"{len(report.problems)} problem(s) found")
        if not report.ok:
            sys.exit(1)

    _run(run)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--split", default="train", show_default=True, help="Which split to wait for.")
@click.option("--shards", type=click.IntRange(min=1), metavar="N", help="Wait for N shards.")
@click.option("--all", "wait_all", is_flag=True, help="Wait for every shard (the default).")
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Give up (exit 1, naming what is missing) after this long. Default: wait forever.",
)
def wait(
    folder: Path, split: str, shards: int | None, wait_all: bool, timeout: float | None
) -> None:
    """Block until shards of SPLIT in the dataset FOLDER are verified.

    FOLDER is the dataset folder (DIR/NAME of `torrentds get -d DIR`; it may
    not exist yet). Exits 0 once N shards (--shards N) or all of them (--all)
    are in FOLDER/.torrentds/ready.jsonl; exits 1 on timeout or when the
    download failed.
    """
    if shards is not None and wait_all:
        raise click.UsageError("give --shards N or --all, not both")

    def run() -> None:
        status = service.wait_ready(folder, split, shards, timeout)
        click.echo(f"{split}: {len(status.ready)} of {status.total} shards ready")

    _run(run)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--split", default="train", show_default=True, help="Which split.")
@click.option(
    "--pattern",
    is_flag=True,
    help="Print the split's brace pattern from the manifest (all shards, ready or not).",
)
def urls(folder: Path, split: str, pattern: bool) -> None:
    """Print the verified shards of SPLIT in FOLDER, one path a line (ready order).

    With --pattern, print the brace pattern of every shard of the split from
    the manifest, e.g. FOLDER/val/val-{000000..000001}.tar, for
    webdataset.WebDataset; pair it with `torrentds wait FOLDER --all`.
    """

    def run() -> None:
        for line in service.ready_urls(folder, split, pattern):
            click.echo(line)

    _run(run)


def _float_or_inf(value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a number (or inf)") from exc


def _session_options(
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


def _network_options(fn: Callable[..., None]) -> Callable[..., None]:
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


class _Stop(threading.Event):
    """Set by SIGTERM/SIGINT; ``signum`` says which came first."""

    signum: int | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    """SIGTERM/SIGINT set the event: the job saves resume data and returns."""
    stop = _Stop()
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


def _check_addresses(listen: str | None, peers: tuple[str, ...]) -> None:
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


def _exit_if_interrupted(stop: _Stop, printer: EventPrinter, result: transfer.JobResult) -> None:
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
        self.live = not as_json and _err.is_terminal
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
                console=_err,
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

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] in ("completed", "seeding"):
            self.reached_seeding = True
        if self.as_json:
            click.echo(json.dumps({**event, "time": round(time.time(), 3)}, sort_keys=True))
            return
        kind = event["event"]
        if kind == "progress" and self._progress is not None:
            self._progress.update(
                self._task,
                description=event["state"],
                completed=event["done"],
                total=event["total"] or None,
                down=_human(event["down_rate"]),
                up=_human(event["up_rate"]),
                peers=event["peers"],
                shards=f"{event['shards_ready']}/{event['shards_total']}",
            )
        elif kind == "progress":
            return
        elif kind == "started":
            _err.print(f"torrentds: {event['infohash']} listening on port {event['listen_port']}")
        elif kind == "metadata":
            _err.print(
                f"torrentds: {event['name']}: {_human(event['bytes'])} in {event['files']} files"
            )
        elif kind == "warning":
            _err.print(f"torrentds: warning: {event['message']}")
        elif kind == "completed":
            _err.print(f"torrentds: complete, every shard verified: {event['dataset_dir']}")
        elif kind == "seeding":
            hours = event["hours"]
            _err.print(
                "torrentds: seeding "
                + ("until stopped" if hours is None else f"for up to {hours:g} h")
            )
        elif kind == "api":
            _err.print(f"torrentds: API on {event['url']}")


def _print_summary(result: transfer.JobResult) -> None:
    click.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.name} "
        f"downloaded {_human(result.downloaded)}, uploaded {_human(result.uploaded)}, "
        f"ratio {result.ratio:.2f}, seeded {result.seconds_seeded:.0f} s, "
        f"shards {result.shards_ready}/{result.shards_total}"
    )


@main.command()
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
@_network_options
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
        seed_hours=_float_or_inf(seed_hours) if seed_hours is not None else 0.0,
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
        session=_session_options(listen, upnp, dht, lsd, max_upload, max_download, utp),
    )

    def run() -> None:
        _check_addresses(listen, peers)
        with _stop_on_signals() as stop, EventPrinter(as_json) as printer:
            if api_listen is None:
                result = service.get(opts, printer, stop)
            else:
                token = api_token or os.environ.get(sidecar_config.TOKEN_ENV) or None
                result = _get_with_api(opts, api_listen, token, printer, stop)
        if not as_json:
            _print_summary(result)
        _exit_if_interrupted(stop, printer, result)

    _run_job_command(run, as_json)


def _get_with_api(
    opts: options.GetOptions,
    listen: str,
    token: str | None,
    printer: EventPrinter,
    stop: threading.Event,
) -> transfer.JobResult:
    """``get --api``: the same job, run in a one-dataset sidecar that serves the API."""
    api = server.ApiServer(listen, token)  # a refused or busy address fails before any work
    conf = sidecar_config.SidecarConfig(
        session=opts.session, api=listen, api_token=token, data_root=(opts.directory,)
    )
    try:
        sc = Sidecar(conf, printer)

        def serving() -> None:
            api.start(sc)
            printer({"event": "api", "url": api.url})

        return sc.run_get(opts, printer, stop, on_running=serving, on_stopping=api.close)
    finally:
        api.close()


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.argument("torrent")
@click.option(
    "--skip-check",
    is_flag=True,
    help="Trust the data without hashing it first (a folder `create` just made).",
)
@_network_options
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
    hours = _float_or_inf(seed_hours) if seed_hours is not None else math.inf
    opts = service.SeedOptions(
        folder=folder,
        torrent=Path(torrent),
        seed_hours=hours,
        seed_ratio=seed_ratio,
        skip_check=skip_check,
        peers=peers,
        session=_session_options(listen, upnp, dht, lsd, max_upload, max_download, utp),
    )

    def run() -> None:
        _check_addresses(listen, peers)
        with _stop_on_signals() as stop, EventPrinter(as_json) as printer:
            result = service.seed(opts, printer, stop)
        if not as_json:
            _print_summary(result)
        _exit_if_interrupted(stop, printer, result)

    _run_job_command(run, as_json)


class SidecarPrinter:
    """The sidecar's log: JSON lines on stdout, or one plain line per event on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self.as_json:
                line = json.dumps({**event, "time": round(time.time(), 3)}, sort_keys=True)
                click.echo(line)
                return
            text = _sidecar_line(event)
            if text is not None:
                click.echo(f"torrentds: {text}", err=True)


def _sidecar_line(event: dict[str, Any]) -> str | None:
    kind = event["event"]
    who = f"[{event['dataset'] or event.get('infohash', '?')}] " if "dataset" in event else ""
    if kind == "started":
        return f"{who}{event['infohash']} started, listening on port {event['listen_port']}"
    if kind == "metadata":
        return f"{who}{_human(event['bytes'])} in {event['files']} files"
    if kind == "shard_ready":
        return f"{who}shard ready: {event['path']}"
    if kind == "completed":
        return f"{who}complete, every shard verified: {event['dataset_dir']}"
    if kind == "seeding":
        hours = event["hours"]
        return f"{who}seeding " + ("until stopped" if hours is None else f"for up to {hours:g} h")
    if kind == "done":
        return (
            f"{who}{'stopped' if event.get('stopped') else 'done'}: "
            f"downloaded {_human(event['downloaded'])}, uploaded {_human(event['uploaded'])}"
        )
    if kind == "warning":
        return f"warning: {who}{event['message']}"
    if kind == "error":
        return f"{who or '[' + str(event.get('source', 'sidecar')) + '] '}error: {event['message']}"
    if kind == "removed":
        return f"removed {event['source']} ({event['infohash']})"
    if kind == "api":
        return f"API on {event['url']}"
    if kind == "reloaded":
        return f"config reloaded from {event['config']} ({event['datasets']} datasets)"
    return None


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The sidecar's TOML config (see deploy/torrentds.toml).",
)
@click.option(
    "--api",
    "api_listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve the HTTP API here (overrides [api] listen; default 127.0.0.1:8700).",
)
@click.option(
    "--api-token",
    default=None,
    metavar="TOKEN",
    help="Bearer token every API request must carry; required beyond loopback. "
    "Default: [api] token, then $TORRENTDS_API_TOKEN.",
)
@click.option("--json", "as_json", is_flag=True, help="Log one JSON object per line on stdout.")
def sidecar(
    config_path: Path, api_listen: str | None, api_token: str | None, as_json: bool
) -> None:
    """Fetch and seed every dataset of the config from one session, serving an HTTP API.

    Each [[dataset]] has its own folder, seeding limits and rank. SIGTERM or
    Ctrl-C saves resume data for every torrent and exits 0; SIGHUP reloads the
    config, adding and removing datasets without restarting the others.
    """

    def run() -> None:
        base = sidecar_config.load(config_path)
        conf = dataclasses.replace(
            base,
            api=api_listen or base.api,
            api_token=api_token or base.api_token,
        )
        api = server.ApiServer(conf.api, conf.api_token)
        printer = SidecarPrinter(as_json)
        try:
            sc = Sidecar(conf, printer)

            def serving() -> None:
                api.start(sc)
                printer({"event": "api", "url": api.url})

            def reload() -> None:
                try:
                    new = sidecar_config.load(config_path)
                    if (new.session, new.api, new.api_token) != (
                        base.session,
                        base.api,
                        base.api_token,
                    ):
                        printer(
                            {
                                "event": "warning",
                                "message": f"{config_path}: [session] and [api] changes "
                                "take effect on restart",
                            }
                        )
                    sc.reload(dataclasses.replace(new, api=conf.api, api_token=conf.api_token))
                except TorrentdsError as exc:
                    printer({"event": "error", "source": "reload", "message": str(exc)})
                    return
                printer(
                    {"event": "reloaded", "config": str(config_path), "datasets": len(new.datasets)}
                )

            def on_hup(signum: int, frame: object) -> None:
                threading.Thread(target=reload, daemon=True).start()

            old_hup = signal.signal(signal.SIGHUP, on_hup)
            try:
                with _stop_on_signals() as stop:
                    sc.run(stop, on_running=serving, on_stopping=api.close)
            finally:
                signal.signal(signal.SIGHUP, old_hup)
        finally:
            api.close()

    _run(run)


@main.command()
@click.option(
    "--api",
    "api_url",
    default=f"http://{sidecar_config.DEFAULT_API}",
    show_default=True,
    metavar="URL",
    help="The sidecar's API (http://HOST:PORT).",
)
@click.option(
    "--api-token",
    default=None,
    metavar="TOKEN",
    help="Bearer token for the API. Default: $TORRENTDS_API_TOKEN.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the /status JSON.")
def status(api_url: str, api_token: str | None, as_json: bool) -> None:
    """Show what a running sidecar (`sidecar` or `get --api`) is doing, per torrent."""

    def run() -> None:
        token = api_token or os.environ.get(sidecar_config.TOKEN_ENV) or None
        doc = server.fetch(api_url, "/status", token)
        if as_json:
            _print_json(doc)
            return
        torrents: list[dict[str, Any]] = doc.get("torrents", [])
        if not torrents:
            click.echo(f"no torrents in the sidecar at {api_url}")
            return
        headers = _STATUS_HEADERS
        rows = [_status_row(t) for t in torrents]
        out = Console()
        if out.is_terminal:
            from rich.table import Table

            table = Table(*headers, box=None, header_style="bold")
            for row in rows:
                table.add_row(*row)
            out.print(table)
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        for line in [headers, *rows]:
            click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())

    _run(run)


_STATUS_HEADERS = [
    "NAME",
    "INFOHASH",
    "STATE",
    "DONE",
    "DOWN",
    "UP",
    "PEERS",
    "SHARDS",
    "SEED LEFT",
]


def _status_row(t: dict[str, Any]) -> list[str]:
    left = t.get("seeding_left")
    if left is not None:
        seed_left = _duration(float(left))
    elif t.get("state") == "seeding":
        seed_left = "until stopped"
    else:
        seed_left = "-"
    return [
        str(t.get("name") or "?"),
        str(t.get("infohash", ""))[:12],
        str(t.get("state", "?")),
        f"{float(t.get('progress') or 0):.0%}",
        f"{_human(int(t.get('down_rate') or 0))}/s",
        f"{_human(int(t.get('up_rate') or 0))}/s",
        str(t.get("peers", "-")),
        f"{t.get('shards_ready', '-')}/{t.get('shards_total', '-')}",
        seed_left,
    ]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _run_job_command(fn: Callable[[], None], as_json: bool) -> None:
    try:
        fn()
    except TorrentdsError as exc:
        if as_json:
            click.echo(
                json.dumps({"event": "error", "message": str(exc), "time": round(time.time(), 3)})
            )
        click.echo(f"torrentds: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C before the job's own handler is installed
        click.echo("torrentds: interrupted", err=True)
        sys.exit(130)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
