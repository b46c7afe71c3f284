"""`sidecar` (several datasets, an HTTP API, SIGHUP reloads) and `status`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from torrentds.cli.base import (
    duration,
    human,
    print_json,
    run_command,
)
from torrentds.cli.signals import stop_on_signals
from torrentds.errors import TorrentdsError
from torrentds.sidecar import client, server
from torrentds.sidecar import config as sidecar_config
from torrentds.sidecar.facade import Sidecar


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
        return f"{who}{human(event['bytes'])} in {event['files']} files"
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
            f"downloaded {human(event['downloaded'])}, uploaded {human(event['uploaded'])}"
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


@click.command()
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
                with stop_on_signals() as stop:
                    sc.run(stop, on_running=serving, on_stopping=api.close)
            finally:
                signal.signal(signal.SIGHUP, old_hup)
        finally:
            api.close()

    run_command(run)


@click.command()
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
        doc = client.fetch(api_url, "/status", token)
        if as_json:
            print_json(doc)
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

    run_command(run)


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
        seed_left = duration(float(left))
    elif t.get("state") == "seeding":
        seed_left = "until stopped"
    else:
        seed_left = "-"
    return [
        str(t.get("name") or "?"),
        str(t.get("infohash", ""))[:12],
        str(t.get("state", "?")),
        f"{float(t.get('progress') or 0):.0%}",
        f"{human(int(t.get('down_rate') or 0))}/s",
        f"{human(int(t.get('up_rate') or 0))}/s",
        str(t.get("peers", "-")),
        f"{t.get('shards_ready', '-')}/{t.get('shards_total', '-')}",
        seed_left,
    ]
