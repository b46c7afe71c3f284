"""`create`, `info`, `verify`: the dataset side, with progress bars on a terminal."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from torrentds.cli.base import (
    SIZE,
    err_console,
    human,
    print_json,
    run_command,
    urls_option,
)
from torrentds.progress import Advance, Reporter, SilentReporter
from torrentds.service import create as creating
from torrentds.service import verify as checking


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
    if not enabled or not err_console.is_terminal:
        yield SilentReporter()
        return
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield BarReporter(progress)


@click.command()
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
@urls_option("--tracker", "trackers", "Announce URL, each its own tier (repeatable).")
@click.option(
    "--no-default-trackers", is_flag=True, help="Leave out the Academic Torrents tracker tiers."
)
@urls_option(
    "--web-seed", "web_seeds", "BEP 19 web seed, e.g. an S3 or nginx URL ending in / (repeatable)."
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
    opts = creating.CreateOptions(
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
            result = creating.create(opts, rep)
        for warning in result.warnings:
            click.echo(f"torrentds: warning: {warning}", err=True)
        if as_json:
            print_json(result)
            return
        splits = ", ".join(
            f"{k}: {v['shards']} shards / {v['samples']} samples" for k, v in result.splits.items()
        )
        click.echo(f"dataset   {result.dataset_dir} ({result.layout}; {splits})")
        click.echo(
            f"torrent   {result.torrent} ({human(result.bytes)}, "
            f"{result.pieces} pieces of {human(result.piece_size)})"
        )
        click.echo(f"infohash  {result.infohash}")
        click.echo(f"magnet    {result.magnet}")

    run_command(run)


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(source: str, as_json: bool) -> None:
    """Show what SOURCE holds: a .torrent path, a magnet link or an http(s) URL."""

    def run() -> None:
        t = checking.info(source)
        if as_json:
            print_json(t)
            return
        click.echo(f"name       {t.name}")
        click.echo(f"infohash   {t.infohash}")
        if t.infohash_v2 and t.infohash_v2 != t.infohash:
            click.echo(f"v2 hash    {t.infohash_v2}")
        if t.has_metadata or t.infohash_v2:  # a btih-only magnet may name any kind
            click.echo(f"version    {t.version}")
        if t.has_metadata:
            click.echo(f"size       {human(t.size)} ({t.size} bytes)")
            click.echo(f"pieces     {t.piece_count} × {human(t.piece_size)}")
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

    run_command(run)


@click.command()
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
            report = checking.verify(folder, torrent, rep)
        if as_json:
            print_json({**dataclasses.asdict(report), "ok": report.ok})
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

    run_command(run)
