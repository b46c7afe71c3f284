"""The sidecar: one libtorrent session serving several datasets until stopped.

Datasets come from the config file, ``add`` (the HTTP API) and ``reload``
(SIGHUP). Everything that touches libtorrent runs on the runner's thread;
the methods here may be called from any thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torrentds import config as cfg
from torrentds import engine, runner, service, transfer
from torrentds.errors import ConflictError, NotFoundError, TorrentdsError

Log = Callable[[dict[str, Any]], None]


class Sidecar:
    def __init__(self, conf: cfg.SidecarConfig, log: Log) -> None:
        self.conf = conf
        self.log = log
        self.engine = engine.Engine(conf.session)
        self.runner = runner.Runner(self.engine, isolate_errors=True)
        # (source, dir) of each dataset the config asked for -> its info-hash
        self.from_config: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- datasets ---------------------------------------------------------------
    def add(self, opts: service.GetOptions) -> dict[str, Any]:
        """Start fetching (and seeding) a dataset; returns its status."""
        spec, job_opts, name = service.prepare_get(opts)

        def start() -> dict[str, Any]:
            job = transfer.Job(self.engine, spec, job_opts, self._emitter(name), known_name=name)
            if job.ref.infohash in self.runner.jobs:
                raise ConflictError(job.ref.infohash, "already in this sidecar")
            self.runner.add(job)
            return job.snapshot()

        try:
            return self.runner.submit(start)
        except TorrentdsError as exc:
            if "duplicate" in exc.reason:
                raise ConflictError(opts.source, "already in this sidecar") from exc
            raise

    def remove(self, infohash: str) -> dict[str, Any]:
        """Stop one torrent, saving resume data; its files stay."""

        def stop() -> dict[str, Any]:
            if infohash not in self.runner.jobs:
                raise NotFoundError(infohash, "no such torrent in this sidecar")
            done = self.runner.remove(infohash, stopped=True)
            return asdict(done.result) if done.result else {"infohash": infohash}

        return self.runner.submit(stop)

    def status(self) -> list[dict[str, Any]]:
        """Per torrent: state, progress, rates, peers, shards, seeding time left."""

        def collect() -> list[dict[str, Any]]:
            out = [job.snapshot() for job in self.runner.jobs.values()]
            for infohash, done in self.runner.finished.items():
                if done.result is not None:
                    r = done.result
                    out.append(
                        {
                            "name": r.name,
                            "infohash": infohash,
                            "state": "done",
                            "progress": 1.0,
                            "shards_ready": r.shards_ready,
                            "shards_total": r.shards_total,
                            "downloaded": r.downloaded,
                            "uploaded": r.uploaded,
                            "dataset_dir": r.dataset_dir,
                        }
                    )
                else:
                    out.append({"infohash": infohash, "state": "error", "error": done.error})
            return out

        return self.runner.submit(collect)

    def shards(self, infohash: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
        """Each shard's state, for one torrent or all, optionally one split."""

        def collect() -> list[dict[str, Any]]:
            if infohash is not None and infohash not in self.runner.jobs:
                raise NotFoundError(infohash, "no such torrent in this sidecar")
            out = []
            for ih, job in self.runner.jobs.items():
                if infohash is not None and ih != infohash:
                    continue
                for shard in job.shard_states():
                    if split is None or shard["split"] == split:
                        out.append({"torrent": ih, **shard})
            return out

        return self.runner.submit(collect)

    def dataset_dirs(self) -> list[Path]:
        """The data folders of running torrents (the only files the API may serve)."""
        return self.runner.submit(
            lambda: [
                job.dataset_dir for job in self.runner.jobs.values() if job.dataset_dir is not None
            ]
        )

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
                self.from_config[key] = snap["infohash"]
            self.conf = conf

    def run(self, stop: threading.Event) -> None:
        """Start the configured datasets, then serve until ``stop`` is set."""

        def first_load() -> None:
            self.runner.running.wait(30)
            self.reload(self.conf)

        threading.Thread(target=first_load, daemon=True).start()
        try:
            self.runner.run(stop, until_empty=False)
        finally:
            self.engine.close()

    def _emitter(self, name: str) -> transfer.Emit:
        def emit(event: dict[str, Any]) -> None:
            if event["event"] != "progress":
                self.log({**event, "dataset": name})

        return emit
