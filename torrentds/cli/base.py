"""What every command shares: how errors become one line and an exit code,
the stderr console, sizes and numbers as users type and read them."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from torrentds.errors import TorrentdsError, exit_code_of
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


Command = TypeVar("Command", bound=Callable[..., Any])

# Plain lines: names and paths may hold "[...]" or ":100:" (not markup, not emoji),
# and a message is one line however narrow the terminal (logs are grepped).
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)


def run_command(fn: Callable[[], None], json_errors: bool = False) -> None:
    """Run a command's body: our errors become one line on stderr (and, with
    ``json_errors``, an ``error`` event on stdout for the script reading it) and
    the exit code ``errors.OUTCOMES`` gives them; Ctrl-C before a job's own
    handler is installed exits 130."""
    try:
        fn()
    except TorrentdsError as exc:
        if json_errors:
            click.echo(json_line({"event": "error", "message": str(exc)}))
        click.echo(f"torrentds: error: {exc}", err=True)
        sys.exit(exit_code_of(exc))
    except KeyboardInterrupt:
        click.echo("torrentds: interrupted", err=True)
        sys.exit(130)


def json_line(doc: dict[str, Any]) -> str:
    """One event as the JSON line ``--json`` prints: its fields and its ``time``."""
    return json.dumps({**doc, "time": round(time.time(), 3)}, sort_keys=True)


def urls_option(flag: str, dest: str, help: str) -> Callable[[Command], Command]:
    """A repeatable URL option (--tracker, --web-seed), collected into ``dest``."""
    return click.option(flag, dest, multiple=True, metavar="URL", help=help)


def print_json(obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    click.echo(json.dumps(obj, indent=None, sort_keys=True))


def float_or_inf(value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a number (or inf)") from exc


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
