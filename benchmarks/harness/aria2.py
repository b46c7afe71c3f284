"""aria2c as the BitTorrent client torrentds is compared with, kept to our own tracker.

DHT and local peer discovery are off, the torrent's own trackers are replaced by ours, and
it binds the host's address only. A leecher's completion time is written by the
``--on-bt-download-complete`` hook, which aria2c runs once every piece's sha1 is checked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from harness.netns import Host, free_port
from harness.procs import Proc, Procs

FLAGS = [
    "--no-conf=true",
    "--disable-ipv6=true",
    "--async-dns=false",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--bt-exclude-tracker=*",
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=warn",
    "--log-level=notice",
    # Preallocate with fallocate (aria2c's default "prealloc" writes zeros first).
    "--file-allocation=falloc",
    "--auto-save-interval=0",
]
HOOK = """#!/bin/sh
# aria2c --on-bt-download-complete: when this leecher had every piece (epoch seconds).
date +%s.%N > "$BENCH_DONE_FILE.tmp" && mv "$BENCH_DONE_FILE.tmp" "$BENCH_DONE_FILE"
"""


def write_hook(folder: Path) -> Path:
    """The completion hook every aria2c leecher runs; write it once per benchmark."""
    hook = folder / "aria2-done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    return hook


class Aria2:
    """How aria2c runs in one benchmark: on which port (None: a free one on 127.0.0.1 for
    each process), with which tracker, with or without peer exchange."""

    def __init__(self, torrent: Path, tracker_url: str, port: int | None, pex: bool) -> None:
        self.torrent = torrent
        self.tracker_url = tracker_url
        self.port = port
        self.pex = pex

    def _start(
        self, procs: Procs, label: str, host: Host, extra: list[str], env: dict[str, str]
    ) -> Proc:
        cmd = [
            "aria2c",
            *FLAGS,
            f"--enable-peer-exchange={str(self.pex).lower()}",
            f"--interface={host.ip}",
            f"--listen-port={self.port or free_port()}",
            f"--bt-tracker={self.tracker_url}",
            f"--log={procs.logdir / f'{label}.log'}",
            f"--stop-with-process={os.getpid()}",
            *extra,
            str(self.torrent),
        ]
        return procs.start(label, cmd, host.ns, env)

    def seeder(self, procs: Procs, host: Host, parent: Path) -> Proc:
        """Seeds the dataset in ``parent`` for ever; ``-V`` hashes it first (before any
        clock starts)."""
        extra = [
            *(f"--dir={parent}", "--check-integrity=true"),
            *("--bt-hash-check-seed=true", "--seed-ratio=0.0"),
        ]
        return self._start(procs, "seeder", host, extra, dict(os.environ))

    def leecher(
        self, procs: Procs, label: str, host: Host, home: Path, hook: Path, seed_minutes: float
    ) -> tuple[Proc, Path]:
        """Downloads into ``home``, then seeds for ``seed_minutes`` (the run stops it);
        the file its hook writes the completion time to."""
        mark = procs.logdir / f"{label}.done"
        extra = [
            *(f"--dir={home}", "--seed-ratio=0.0", f"--seed-time={seed_minutes:g}"),
            f"--on-bt-download-complete={hook}",
        ]
        env = {**os.environ, "BENCH_DONE_FILE": str(mark)}
        return self._start(procs, label, host, extra, env), mark


def done_time(mark: Path) -> float | None:
    """When the leecher whose hook writes ``mark`` had every piece (epoch s), or None."""
    with contextlib.suppress(OSError, ValueError):
        return float(mark.read_text().strip())
    return None
