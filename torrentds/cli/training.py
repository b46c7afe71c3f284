"""`wait` and `urls` for launch scripts: the training side only, so neither
libtorrent nor torf is loaded (a launch script starts fast and needs no engine)."""

from __future__ import annotations

from pathlib import Path

import click

from torrentds.cli.base import (
    run_command,
)
from torrentds.training import consume


@click.command()
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
        status = consume.wait_ready(folder, split, shards, timeout)
        click.echo(f"{split}: {len(status.ready)} of {status.total} shards ready")

    run_command(run)


@click.command()
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
        if pattern:
            click.echo(consume.shard_pattern(folder, split))
            return
        for line in consume.ready_now(folder, split).paths:
            click.echo(line)

    run_command(run)
