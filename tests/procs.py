"""Real helper processes for network tests: opentracker, nginx, torrentds itself.

Everything binds to 127.0.0.1; every wait is a bounded loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import requests

TORRENTDS = [sys.executable, "-m", "torrentds"]
# Network flags every test process gets: loopback only, no discovery.
ISOLATED = ["--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp"]

Event = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Opentracker:
    """Debian's whitelist-only opentracker on 127.0.0.1 (HTTP and UDP)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.whitelist_file = self.dir / "whitelist.txt"
        self.whitelist_file.write_text("")
        # It drops root for "nobody" after chrooting into the folder: let it read.
        self.dir.chmod(0o755)
        self.whitelist_file.chmod(0o644)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/announce"
        # As root it chroots into -d, so the whitelist path is relative to it.
        self.proc = subprocess.Popen(
            [
                "opentracker",
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-P",
                str(self.port),
                "-d",
                str(self.dir),
                "-w",
                "whitelist.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )
        wait_until(self._answers, 10, "opentracker to listen")

    def _answers(self) -> bool:
        try:
            requests.get(f"http://127.0.0.1:{self.port}/stats", timeout=1)
        except requests.RequestException:
            return False
        return True

    def allow(self, infohash: str) -> None:
        """Whitelist an info-hash and wait until announces for it are accepted."""
        with self.whitelist_file.open("a") as fh:
            fh.write(infohash + "\n")
        self.proc.send_signal(signal.SIGHUP)
        # %-encode every byte: a form encoder would turn 0x20 into "+".
        query = (
            f"info_hash={quote_from_bytes(bytes.fromhex(infohash), safe='')}"
            "&peer_id=-TEST00-000000000000&port=1&uploaded=0&downloaded=0&left=1&compact=1"
        )

        def accepted() -> bool:
            body = requests.get(f"{self.url}?{query}", timeout=2).content
            if b"failure reason" not in body:
                return True
            self.proc.send_signal(signal.SIGHUP)  # a reload can be missed; ask again
            return False

        wait_until(accepted, 10, f"opentracker to whitelist {infohash}", interval=0.2)
        # Take the probe's fake peer out of the swarm again.
        requests.get(f"{self.url}?{query}&event=stopped", timeout=2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Nginx:
    """nginx serving ``root`` on 127.0.0.1 with Range support (a web seed)."""

    def __init__(self, root: Path, workdir: Path, limit_rate: str = "") -> None:
        """``limit_rate`` (nginx's, e.g. ``512k``) caps each connection's rate."""
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        conf = self.dir / "nginx.conf"
        # Test folders are 0700 root: workers must run as root to read them.
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    types {{ application/x-bittorrent torrent; text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        location / {{ {f"limit_rate {limit_rate};" if limit_rate else ""} }}
    }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "nginx to listen")

    def _answers(self) -> bool:
        try:
            requests.get(self.url, timeout=1)
        except requests.RequestException:
            return False
        return True

    def requests_served(self) -> int:
        log = self.dir / "access.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Torrentds:
    """A ``torrentds ... --json`` process whose events are read on a thread."""

    def __init__(self, args: list[str], cwd: Path | None = None) -> None:
        self.args = args
        # faulthandler: a child that hangs prints every thread's stack on SIGABRT.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        self.proc = subprocess.Popen(
            [*TORRENTDS, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._queue.put(event)
        self._queue.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def _drain(self, timeout: float) -> bool:
        """Move queued events to ``self.events``; False once stdout closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return True
        if item is None:
            self._queue.put(None)
            return False
        self.events.append(item)
        return True

    def wait_event(
        self, kind: str, timeout: float, where: Callable[[Event], bool] = lambda e: True
    ) -> Event:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if event.get("event") == kind and where(event):
                    return event
            seen = len(self.events)
            if not self._drain(0.1) and self._queue.qsize() <= 1:
                for event in self.events[seen:]:
                    if event.get("event") == kind and where(event):
                        return event
                break
        raise AssertionError(
            f"no {kind!r} event within {timeout} s from {self.args}; "
            f"exit={self.proc.poll()} stderr={self.stderr[-2000:]!r} "
            f"last events={self.events[-5:]}"
        )

    @property
    def port(self) -> int:
        return int(self.wait_event("started", 20)["listen_port"])

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGABRT)  # its stacks go to stderr (faulthandler)
            self.kill()
            self._err_reader.join(5)
            self._drain(0.5)
            raise AssertionError(
                f"{self.args} did not exit within {timeout} s; "
                f"last events={self.events[-5:]} stderr={self.stderr[-4000:]!r}"
            ) from None
        while self._drain(0.2):
            pass
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self.proc.poll()


@contextlib.contextmanager
def running(*procs: Torrentds) -> Iterator[None]:
    """Kill whatever is still running when the block ends (pass or fail)."""
    try:
        yield
    finally:
        for p in procs:
            p.kill()
