"""Job events for a person or a script: JSON lines, a live bar on a TTY, or
plain milestone lines; and the one-line summary at the end."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from torrentds.cli.base import err_console, human
from torrentds.swarm import events


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
            return  # raised to the command, which prints it once (``base.run_command``)
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
