"""The command line: one module per command group, loaded when its command runs.

``main`` lists every command from ``COMMANDS`` without importing it, so
``torrentds --help``, ``--version``, ``wait`` and ``urls`` (what launch
scripts call) load neither libtorrent nor torf. A new command is a function in
the module of its group and one line here; options several commands share live
in ``fetch.network_options``; errors become exit codes in ``base``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click

from torrentds import __version__


@dataclass(frozen=True)
class Entry:
    module: str  # under torrentds.cli
    summary: str  # the line ``torrentds --help`` shows


COMMANDS: dict[str, Entry] = {
    "create": Entry("dataset", "pack a dataset folder and make its .torrent"),
    "info": Entry("dataset", "show what a .torrent, magnet or info-hash holds"),
    "verify": Entry("dataset", "check a dataset folder offline: pieces, sha256, shards"),
    "get": Entry("fetch", "download, verify each shard, hand it to training, seed"),
    "seed": Entry("fetch", "seed a dataset folder (a swarm's origin)"),
    "wait": Entry("training", "block until shards of a split are verified"),
    "urls": Entry("training", "print verified shard paths, or the brace pattern"),
    "sidecar": Entry("sidecar", "serve several datasets from one session, with an HTTP API"),
    "status": Entry("sidecar", "what a running sidecar is doing"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when one is run (pip's registry)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"torrentds.cli.{entry.module}")
        command: click.Command = getattr(module, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="torrentds")
def main() -> None:
    """Distribute ML datasets as verified WebDataset shards over BitTorrent.

    Run `torrentds COMMAND --help` for a command's options and examples.
    """


__all__ = ["COMMANDS", "main"]
