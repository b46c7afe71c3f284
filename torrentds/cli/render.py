"""One renderer per sink: job events as JSON lines (``--json``) or for a person
(a live bar on a TTY, plain milestone lines otherwise); the sidecar's log as
plain lines; the ``status`` table. Every renderer takes the same calls: typed
job events, ``api(url)`` once the HTTP API is up, ``log(doc)`` for the sidecar's
own log lines."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from torrentds.cli.base import duration, err_console, human, json_line
from torrentds.swarm import events


class Renderer:
    """What every sink shares: a failure is left to the command (printed once by
    ``base.run_command``), and whether the job got as far as seeding."""

    def __init__(self) -> None:
        # "completed" (get) or "seeding" (a seed's check done, or a damaged folder's)
        self.reached_seeding = False
        self._lock = threading.Lock()  # the sidecar logs from several threads

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: events.JobEvent) -> None:
        if isinstance(event, events.Failed):
            return
        if isinstance(event, events.Completed | events.Seeding):
            self.reached_seeding = True
        with self._lock:
            self.show(event)

    def show(self, event: events.JobEvent) -> None:
        raise NotImplementedError

    def api(self, url: str) -> None:
        self.log({"event": "api", "url": url})

    def log(self, doc: dict[str, Any]) -> None:
        raise NotImplementedError


class _Lines(Renderer):
    """A renderer that writes every event and log entry as one line."""

    def show(self, event: events.JobEvent) -> None:
        self._write(events.as_json(event))

    def log(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        raise NotImplementedError


class JsonLines(_Lines):
    """One JSON object per line on stdout, each with its ``time``."""

    def _write(self, doc: dict[str, Any]) -> None:
        click.echo(json_line(doc))


class Terminal(Renderer):
    """For a person: a live progress bar on a TTY, milestone lines on stderr."""

    def __init__(self) -> None:
        super().__init__()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> Terminal:
        if err_console.is_terminal:
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

    def show(self, event: events.JobEvent) -> None:
        if isinstance(event, events.Progress):
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
            return
        if not isinstance(event, events.ShardReady | events.Done):  # the summary says done
            text = line_of(events.as_json(event))
            if text is not None:
                err_console.print(f"torrentds: {text}")

    def log(self, doc: dict[str, Any]) -> None:
        """Of the sidecar's log (``get --api``), the API line and problems."""
        if doc.get("event") in ("api", "warning", "error"):
            err_console.print(f"torrentds: {line_of(doc)}")


def job_renderer(as_json: bool) -> Renderer:
    return JsonLines() if as_json else Terminal()


class SidecarLines(_Lines):
    """The sidecar's log for a person: one plain line per event on stderr."""

    def _write(self, doc: dict[str, Any]) -> None:
        text = line_of(doc)
        if text is not None:
            click.echo(f"torrentds: {text}", err=True)


def sidecar_log(as_json: bool) -> Renderer:
    return JsonLines() if as_json else SidecarLines()


_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "started": lambda e: (
        f"{e['infohash']} started, listening on port {e['listen_port']}"
        + (f", peer {e['peer_index']}" if e.get("peer_index") else "")
    ),
    "metadata": lambda e: f"{e['name']}: {human(e['bytes'])} in {e['files']} files",
    "shard_ready": lambda e: f"shard ready: {e['path']}",
    "completed": lambda e: f"complete, every shard verified: {e['dataset_dir']}",
    "seeding": lambda e: (
        "seeding " + ("until stopped" if e["hours"] is None else f"for up to {e['hours']:g} h")
    ),
    "done": lambda e: (
        f"{'stopped' if e.get('stopped') else 'done'}: "
        f"downloaded {human(e['downloaded'])}, uploaded {human(e['uploaded'])}"
    ),
    "warning": lambda e: f"warning: {e['message']}",
    "error": lambda e: f"error: {e['message']}",
    "removed": lambda e: f"removed {e['source']} ({e['infohash']})",
    "api": lambda e: f"API on {e['url']}",
    "reloaded": lambda e: f"config reloaded from {e['config']} ({e['datasets']} datasets)",
}


def line_of(doc: dict[str, Any]) -> str | None:
    """One plain line for an event or log entry (None: not worth a line), led by
    the dataset it is about in a sidecar's log."""
    text = _LINES.get(str(doc.get("event")))
    if text is None:
        return None
    who = doc.get("dataset") or doc.get("infohash") if "dataset" in doc else doc.get("source")
    if doc.get("event") in ("removed", "api", "reloaded") or who is None:
        return text(doc)
    return f"[{who}] {text(doc)}"


def print_summary(result: events.JobResult) -> None:
    click.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.name} "
        f"downloaded {human(result.downloaded)}, uploaded {human(result.uploaded)}, "
        f"ratio {result.ratio:.2f}, seeded {result.seconds_seeded:.0f} s, "
        f"shards {result.shards_ready}/{result.shards_total}"
    )


def status_table(torrents: list[dict[str, Any]]) -> None:
    """``status``: a table on a TTY, aligned plain columns otherwise."""
    rows = [_status_row(t) for t in torrents]
    out = Console()
    if out.is_terminal:
        from rich.table import Table

        table = Table(*_STATUS_HEADERS, box=None, header_style="bold")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_STATUS_HEADERS)]
    for line in [_STATUS_HEADERS, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


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
