"""The servers a benchmark runs beside the tools it times: opentracker and nginx."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote_from_bytes

from harness.netns import Host
from harness.procs import Proc, Procs, in_ns, wait_until


def http_get(host: Host, url: str) -> bytes | None:
    """The body of ``url`` fetched from ``host`` with curl (2 s at most), None on failure."""
    done = subprocess.run(
        in_ns(host.ns, ["curl", "-s", "--max-time", "2", url]),
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def _quote(infohash: str) -> str:
    # %-encode every byte: a form encoder would turn 0x20 into "+".
    return quote_from_bytes(bytes.fromhex(infohash), safe="")


class Tracker:
    """Debian's whitelist-only opentracker on ``host``; a fresh process per run, so no peer
    of an earlier run is ever handed out while the announce URL in the .torrent stays valid."""

    def __init__(self, host: Host, port: int) -> None:
        self.host = host
        self.base = f"http://{host.ip}:{port}"
        self.url = f"{self.base}/announce"
        self.port = port

    def start(self, procs: Procs, workdir: Path, infohashes: Sequence[str]) -> Proc:
        """Start it with ``infohashes`` whitelisted; returns once it accepts each of them."""
        # opentracker sets SO_REUSEPORT: a stale instance on this port would silently share
        # the announces with the new one. Refuse to start beside one.
        if http_get(self.host, f"{self.base}/stats") is not None:
            raise RuntimeError(f"something already answers on {self.base}")
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)  # it chroots here and drops root for "nobody": let it read
        whitelist = workdir / "whitelist.txt"
        whitelist.write_text("".join(h + "\n" for h in infohashes))
        whitelist.chmod(0o644)
        port = str(self.port)
        proc = procs.start(
            "opentracker",
            [
                *("opentracker", "-i", self.host.ip, "-p", port, "-P", port),
                *("-d", str(workdir), "-w", "whitelist.txt"),
            ],
            self.host.ns,
        )

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"opentracker exited: {proc.tail()}")
            return http_get(self.host, f"{self.base}/stats") is not None

        wait_until(answers, 15, "opentracker to listen")
        for infohash in infohashes:
            self._wait_accepted(proc, infohash)
        return proc

    def _wait_accepted(self, proc: Proc, infohash: str) -> None:
        # A "started" announce is refused for a hash not whitelisted; the probe peer is
        # taken out again with "stopped", so no leecher is handed a dead address.
        query = (
            f"info_hash={_quote(infohash)}&peer_id=-BENCH0-000000000000&port=1"
            "&uploaded=0&downloaded=0&left=1&compact=1"
        )

        def accepted() -> bool:
            body = http_get(self.host, f"{self.url}?{query}&event=started")
            if body is not None and b"failure reason" not in body:
                return True
            proc.signal(signal.SIGHUP)  # reload the whitelist (a reload can be missed)
            return False

        wait_until(accepted, 15, f"opentracker to accept {infohash}", every=0.2)
        http_get(self.host, f"{self.url}?{query}&event=stopped")
        wait_until(lambda: self.scrape(infohash) == (0, 0), 10, "the probe peer to leave")

    def scrape(self, infohash: str) -> tuple[int, int]:
        """(complete, incomplete): the seeds and leechers it knows for ``infohash``."""
        body = http_get(self.host, f"{self.base}/scrape?info_hash={_quote(infohash)}") or b""
        complete = re.search(rb"8:completei(\d+)e", body)
        incomplete = re.search(rb"10:incompletei(\d+)e", body)
        return (
            int(complete.group(1)) if complete else 0,
            int(incomplete.group(1)) if incomplete else 0,
        )

    def wait_seeding(self, infohash: str, seeder: Proc, timeout: float) -> None:
        """Until the tracker counts a seed for ``infohash``; raises if ``seeder`` exits."""

        def seeding() -> bool:
            if seeder.poll() is not None:
                raise RuntimeError(
                    f"{seeder.label} exited with {seeder.popen.returncode}: {seeder.tail()}"
                )
            return self.scrape(infohash)[0] >= 1

        wait_until(seeding, timeout, f"{seeder.label} to announce as a seed")


NGINX_CONF = """
user root;
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format bytes '$body_bytes_sent $status';
    access_log {workdir}/access.log bytes;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen {ip}:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(procs: Procs, host: Host, port: int, root: Path, workdir: Path) -> Proc:
    """nginx serving ``root`` on ``host`` (Range requests: a BEP 19 web seed too); its
    access log records the payload bytes of every response (``nginx_payload``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workdir=workdir, ip=host.ip, port=port, root=root))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return procs.start("nginx", [nginx, "-c", str(conf), "-p", str(workdir)], host.ns)


def nginx_payload(workdir: Path) -> int:
    """The payload bytes nginx has sent, from its access log."""
    total = 0
    with contextlib.suppress(OSError):
        for line in (workdir / "access.log").read_text().splitlines():
            with contextlib.suppress(ValueError, IndexError):
                total += int(line.split()[0])
    return total
