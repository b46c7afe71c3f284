"""The sidecar: one libtorrent session serving several datasets until stopped.

Datasets come from the config file, ``add`` (the HTTP API) and ``reload``
(SIGHUP). Everything that touches libtorrent runs on the runner's thread;
the methods here may be called from any thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torrentds import options
from torrentds.errors import NotFoundError, TorrentdsError, shorten
from torrentds.service import fetch
from torrentds.sidecar import config as cfg
from torrentds.swarm import events, runner
from torrentds.swarm.job import Job
from torrentds.torrent import addresses, engine

Log = Callable[[dict[str, Any]], None]
Hook = Callable[[], None]


class Sidecar:
    def __init__(self, conf: cfg.SidecarConfig, log: Log) -> None:
        self.conf = conf
        self.log = log
        self.engine = engine.Engine(conf.session)
        self.runner = runner.Runner(self.engine, publishing=True)
        # (source, dir) of each dataset the config asked for -> its info-hash
        self.from_config: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._ended = False  # ``run`` returned: the engine is closed

    @property
    def running(self) -> bool:
        """True while the session loop runs (requests can be answered)."""
        return self.runner.running.is_set()

    @property
    def view_stamp(self) -> object:
        """Changes whenever the loop publishes a new view (answers may be reused until)."""
        return self.runner.view

    # -- datasets ---------------------------------------------------------------
    def add(self, opts: options.GetOptions) -> dict[str, Any]:
        """Start fetching (and seeding) a dataset; returns its status."""
        spec, job_opts, name = fetch.prepare_get(opts)
        _check_peers(opts.peers)

        def start() -> dict[str, Any]:
            if self._ended:
                raise TorrentdsError(opts.source, "the sidecar is stopping")
            job = Job(self.engine, spec, job_opts, self._emitter(name), known_name=name)
            self.runner.add(job)
            failed = self.runner.finished.get(job.ref.infohash)
            if failed is not None and failed.error is not None:
                raise failed.error
            return job.snapshot()

        # One dataset's bad input must not reach the API as a 500.
        with runner.errors_as_ours(shorten(opts.source)):
            return self.runner.submit(start)

    def remove(self, infohash: str) -> dict[str, Any]:
        """Stop one torrent, saving resume data; its files stay."""

        def stop() -> dict[str, Any]:
            if infohash not in self.runner.jobs:
                ended = self.runner.finished.get(infohash)
                if ended is None or ended.error is None:
                    raise NotFoundError(infohash, "no such torrent in this sidecar")
                # A dataset that failed: forget it (its files stay), so it can be added again.
                del self.runner.finished[infohash]
                return {"infohash": infohash, "state": "removed", "error": str(ended.error)}
            done = self.runner.remove(infohash, stopped=True)
            return asdict(done.result) if done.result else {"infohash": infohash}

        return self.runner.submit(stop)

    def status(self) -> list[dict[str, Any]]:
        """Per torrent: state, progress, rates, peers, shards, seeding time left
        (from the loop's last published view: never waits for the loop)."""
        return [dict(row) for row in self.runner.view.rows]

    def shards(self, infohash: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
        """Each shard's state, for one torrent or all, optionally one split."""
        published = self.runner.view.shards
        if infohash is not None and infohash not in published:
            raise NotFoundError(infohash, "no such torrent in this sidecar")
        return [
            {"torrent": ih, **shard}
            for ih, states in published.items()
            if infohash is None or ih == infohash
            for shard in states
            if split is None or shard["split"] == split
        ]

    def dataset_dirs(self) -> list[Path]:
        """The data folders of running torrents (the only files the API may serve)."""
        return list(self.runner.view.dataset_dirs)

    # -- config -----------------------------------------------------------------
    def reload(self, conf: cfg.SidecarConfig) -> None:
        """Apply a new config: add new datasets, remove dropped ones, keep the rest."""
        with self._lock:
            wanted = {(ds.source, str(ds.directory)): ds for ds in conf.datasets}
            for key in [k for k in self.from_config if k not in wanted]:
                infohash = self.from_config.pop(key)
                with contextlib.suppress(NotFoundError):  # it may have failed already
                    self.remove(infohash)
                self.log({"event": "removed", "source": key[0], "infohash": infohash})
            for key, ds in wanted.items():
                if key in self.from_config:
                    continue
                try:
                    snap = self.add(ds)
                except TorrentdsError as exc:
                    self.log({"event": "error", "source": ds.source, "message": str(exc)})
                    continue
                except Exception as exc:  # a bug: the other datasets still start
                    message = f"{ds.source}: cannot start: {type(exc).__name__}: {exc}"
                    self.log({"event": "error", "source": ds.source, "message": message})
                    continue
                self.from_config[key] = snap["infohash"]
            self.conf = conf

    def run(
        self,
        stop: threading.Event,
        *,
        load_config: bool = True,
        until_done: str | None = None,
        on_running: Hook | None = None,
        on_stopping: Hook | None = None,
    ) -> None:
        """Start the configured datasets, then serve until ``stop`` is set.

        ``on_running`` is called once the loop answers calls (start the API
        then), ``on_stopping`` before it stops (stop the API first). With
        ``until_done`` the sidecar also stops when that torrent's job ends.
        """
        inner = threading.Event()

        def watch() -> None:
            while not self.runner.running.wait(0.1):
                if inner.is_set():
                    return
            if on_running is not None:
                on_running()
            if load_config:
                threading.Thread(target=self.reload, args=(self.conf,), daemon=True).start()
            while not (stop.wait(0.2) or inner.is_set()):
                if until_done is not None and until_done not in self.runner.jobs:
                    break
            if on_stopping is not None:
                on_stopping()
            inner.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            self.runner.run(inner, until_empty=False)
        finally:
            inner.set()
            watcher.join(10)
            self._ended = True
            self.engine.close()

    def run_get(
        self,
        opts: options.GetOptions,
        emit: events.Emit,
        stop: threading.Event,
        on_running: Hook | None = None,
        on_stopping: Hook | None = None,
    ) -> events.JobResult:
        """``get`` inside a sidecar (``get --api``): returns when its job ends.

        Events go to ``emit`` unchanged, as in ``fetch.get``; datasets added
        through the API meanwhile are stopped (resume data saved) with it.
        """
        try:
            spec, job_opts, name = fetch.prepare_get(opts)
            _check_peers(opts.peers)
            with runner.errors_as_ours(name or shorten(opts.source)):
                job = Job(self.engine, spec, job_opts, emit, known_name=name)
        except BaseException:
            self._ended = True
            self.engine.close()
            raise
        return runner.run_job(
            self.runner,
            job,
            lambda: self.run(
                stop,
                load_config=False,
                until_done=job.ref.infohash,
                on_running=on_running,
                on_stopping=on_stopping,
            ),
        )

    def _emitter(self, name: str) -> events.Emit:
        def emit(event: events.JobEvent) -> None:
            if not isinstance(event, events.Progress):
                self.log({**events.as_json(event), "dataset": name})

        return emit


def _check_peers(peers: Sequence[str]) -> None:
    """Refuse now a peer name that does not resolve, rather than once the
    torrent is in the session (``prepare_get`` checked the paths under DIR)."""
    for peer in peers:
        addresses.peer_address(peer)
