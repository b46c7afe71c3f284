"""`sidecar` (several datasets, an HTTP API, SIGHUP reloads) and `status`."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from torrentds.cli.base import (
    print_json,
    run_command,
)
from torrentds.cli.render import sidecar_log, status_table
from torrentds.cli.signals import stop_on_signals
from torrentds.errors import TorrentdsError
from torrentds.sidecar import client, server
from torrentds.sidecar import config as sidecar_config
from torrentds.sidecar.facade import Sidecar


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
        log = sidecar_log(as_json).log
        try:
            sc = Sidecar(conf, log)

            def serving() -> None:
                api.start(sc)
                log({"event": "api", "url": api.url})

            def reload() -> None:
                try:
                    new = sidecar_config.load(config_path)
                    if (new.session, new.api, new.api_token) != (
                        base.session,
                        base.api,
                        base.api_token,
                    ):
                        log(
                            {
                                "event": "warning",
                                "message": f"{config_path}: [session] and [api] changes "
                                "take effect on restart",
                            }
                        )
                    sc.reload(dataclasses.replace(new, api=conf.api, api_token=conf.api_token))
                except TorrentdsError as exc:
                    log({"event": "error", "source": "reload", "message": str(exc)})
                    return
                log(
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
        status_table(torrents)

    run_command(run)
