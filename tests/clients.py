"""Other BitTorrent clients as seeders and leechers: aria2c, transmission-cli, qbittorrent-nox.

Each one runs on 127.0.0.1 only, with DHT, local peer discovery, UPnP/NAT-PMP and peer
exchange off, and no tracker but the one a test names (none by default): peers meet
because one side is told the other's address (``torrentds --peer``, qBittorrent's
``addPeers``) or through a local opentracker. Every wait is a bounded loop; every process
started is killed at teardown (``Clients.close``, the ``clients`` fixture).

- ``Aria2c``: one process per torrent, driven over its JSON-RPC interface (loopback only,
  a random secret). A seeder hash-checks the data first (``-V``) and seeds forever; a
  leecher stops seeding at completion (``--seed-time=0``), which is its "complete".
- ``Transmission``: one ``transmission-cli`` 3.00 per torrent with its own config folder
  (``-g``): its ``settings.json`` turns DHT, LPD, PEX, uTP and port mapping off and binds
  to loopback; its finish script (``-f``) writes a marker file when the torrent is
  complete: after the initial verification for a seeder, after the download for a leecher.
- ``QBittorrent``: one ``qbittorrent-nox`` 4.5 process (libtorrent 2.0, v2 and hybrid
  torrents) serves many torrents. Its ``qBittorrent.conf`` is written before it starts
  (DHT, PeX, LSD, UPnP, GeoIP lookups off; listen on ``lo``; the Web UI on 127.0.0.1 without
  authentication for localhost); the Web API checks that those settings took and is then
  used to add torrents (``skip_checking`` for a seeder), add peers and poll progress.

aria2c and transmission re-encode the info dict to hash it; libtorrent (so qBittorrent and
torrentds) hashes the bytes as they are: for a torrent whose info dict is not in canonical
order they disagree on the info-hash and cannot trade (see ``tests/corpus.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.corpus import ClientName, Entry
from tests.procs import free_port

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ClientError(AssertionError):
    """A client did not do what a test needed (it died, refused a torrent, timed out)."""


def wait_for(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    """Poll ``check`` until it is true or ``timeout`` passes; ``what`` explains a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise ClientError(f"timed out after {timeout:.0f} s: {what()}")
        time.sleep(0.1)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((LOOPBACK, port)) == 0


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaps the process."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise ClientError(f"{name} not installed (make deb installs it)")
    return exe


class Swarmer(ABC):
    """One torrent in one client: something torrentds can ``--peer`` to, or that leeches."""

    client: ClientName
    entry: Entry
    dest: Path  # the folder that holds (or receives) entry.name

    @property
    @abstractmethod
    def port(self) -> int: ...

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def content(self) -> Path:
        return self.dest / self.entry.name

    @abstractmethod
    def complete(self) -> bool:
        """Holds every piece, verified, and serves them (raises if the client failed)."""

    @abstractmethod
    def describe(self) -> str:
        """State and log tail for an error message."""

    def wait_complete(self, timeout: float) -> None:
        wait_for(
            self.complete, timeout, lambda: f"{self.client} {self.entry.id}: {self.describe()}"
        )

    def connect(self, address: str) -> None:
        """Dial a peer. aria2c and transmission-cli cannot be told to."""
        raise ClientError(f"{self.client} cannot be told to connect to a peer")

    @abstractmethod
    def stop(self) -> None: ...


# --------------------------------------------------------------------------- aria2c

ARIA2C_ISOLATION = [
    "--no-conf=true",
    "--interface=127.0.0.1",
    "--disable-ipv6=true",
    "--async-dns=false",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
]


class Aria2c(Swarmer):
    """aria2c seeding (``-V`` first, then forever) or leeching (stop at completion)."""

    client: ClientName = "aria2c"

    def __init__(
        self, workdir: Path, entry: Entry, dest: Path, *, seed: bool, tracker: str | None = None
    ) -> None:
        self.entry = entry
        self.dest = dest
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        dest.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        self.rpc_port = free_port()
        self.secret = secrets.token_hex(16)
        self.log = workdir / "aria2c.log"
        args = [
            _exe("aria2c"),
            *ARIA2C_ISOLATION,
            f"--listen-port={self._port}",
            "--enable-rpc=true",
            "--rpc-listen-all=false",
            f"--rpc-listen-port={self.rpc_port}",
            f"--rpc-secret={self.secret}",
            f"--stop-with-process={os.getpid()}",  # never outlives the test run
            f"--dir={dest}",
            f"--log={self.log}",
            "--log-level=info",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--file-allocation=none",
            "--auto-save-interval=0",
            "--bt-max-peers=0",
        ]
        if tracker:
            args.append(f"--bt-tracker={tracker}")
        else:
            args.append("--bt-exclude-tracker=*")
        if seed:
            args += ["--check-integrity=true", "--bt-hash-check-seed=true", "--seed-ratio=0.0"]
        else:
            args += ["--seed-time=0"]
        args.append(str(entry.torrent))
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=(workdir / "aria2c.err").open("w")
        )
        wait_for(self._rpc_up, START_TIMEOUT, lambda: f"aria2c RPC: {self.describe()}")

    @property
    def port(self) -> int:
        return self._port

    def _call(self, method: str, *params: Any) -> Any:
        body = {
            "jsonrpc": "2.0",
            "id": "t",
            "method": method,
            "params": [f"token:{self.secret}", *params],
        }
        resp = requests.post(f"http://{LOOPBACK}:{self.rpc_port}/jsonrpc", json=body, timeout=5)
        doc = resp.json()
        if "error" in doc:
            raise ClientError(f"aria2c {method}: {doc['error']}")
        return doc["result"]

    def _rpc_up(self) -> bool:
        self._check_alive()
        try:
            self._call("aria2.getVersion")
        except requests.RequestException:
            return False
        return True

    def _check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise ClientError(f"aria2c exited {code}: {tail(self.workdir / 'aria2c.err')}")

    def status(self) -> dict[str, Any] | None:
        """The download's RPC status (active, waiting or stopped), or None before it exists."""
        keys = [
            "gid",
            "status",
            "totalLength",
            "completedLength",
            "seeder",
            "infoHash",
            "errorCode",
            "errorMessage",
            "connections",
        ]
        for method, params in (
            ("aria2.tellActive", [keys]),
            ("aria2.tellWaiting", [0, 10, keys]),
            ("aria2.tellStopped", [0, 10, keys]),
        ):
            found: list[dict[str, Any]] = self._call(method, *params)
            if found:
                return found[0]
        return None

    def complete(self) -> bool:
        self._check_alive()
        st = self.status()
        if st is None:
            return False
        if st["status"] in ("error", "removed"):
            raise ClientError(f"aria2c {self.entry.id}: {st}; log: {tail(self.log)}")
        full = int(st["totalLength"]) > 0 and st["completedLength"] == st["totalLength"]
        if st["status"] == "complete":
            return True
        return bool(st["status"] == "active" and full and st.get("seeder") == "true")

    def describe(self) -> str:
        try:
            st = self.status() if self.proc.poll() is None else None
        except requests.RequestException as exc:
            st = {"rpc": str(exc)}
        return f"exit={self.proc.poll()} status={st} log: {tail(self.log, 800)}"

    def stop(self) -> None:
        stop_process(self.proc)


# --------------------------------------------------------------------------- transmission

TRANSMISSION_SETTINGS: dict[str, Any] = {
    "dht-enabled": False,
    "lpd-enabled": False,
    "pex-enabled": False,
    "utp-enabled": False,  # torrentds speaks TCP only by default
    "port-forwarding-enabled": False,
    "peer-port-random-on-start": False,
    "bind-address-ipv4": LOOPBACK,
    "bind-address-ipv6": "::1",
    "rpc-enabled": False,
    "blocklist-enabled": False,
    "encryption": 0,  # prefer plain connections, accept encrypted ones
    "rename-partial-files": False,
    "incomplete-dir-enabled": False,
    "ratio-limit-enabled": False,
    "idle-seeding-limit-enabled": False,
    "speed-limit-up-enabled": False,
    "speed-limit-down-enabled": False,
    "alt-speed-enabled": False,
    "start-added-torrents": True,
    "scrape-paused-torrents-enabled": False,
    "message-level": 2,
}
FINISH_SCRIPT = """#!/bin/sh
# transmission-cli -f: the torrent is complete (verified); say so for the test.
printf '%s\\n' "$TR_TORRENT_HASH" > "{marker}.tmp" && mv "{marker}.tmp" "{marker}"
"""


class Transmission(Swarmer):
    """``transmission-cli`` 3.00 with a config folder of its own; seeds after completion."""

    client: ClientName = "transmission"

    def __init__(self, workdir: Path, entry: Entry, dest: Path, *, seed: bool) -> None:
        self.entry = entry
        self.dest = dest
        self.workdir = workdir
        self.seed = seed
        config = workdir / "config"
        config.mkdir(parents=True, exist_ok=True)
        dest.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        settings = {**TRANSMISSION_SETTINGS, "peer-port": self._port, "download-dir": str(dest)}
        (config / "settings.json").write_text(json.dumps(settings, indent=1))
        self.marker = workdir / "finished"
        script = workdir / "finished.sh"
        script.write_text(FINISH_SCRIPT.format(marker=self.marker))
        script.chmod(0o755)
        self.log = workdir / "transmission.log"
        self.proc = subprocess.Popen(
            [
                _exe("transmission-cli"),
                *("-g", str(config), "-w", str(dest), "-p", str(self._port)),
                *("-M", "-B", "-D", "-U", "-f", str(script)),
                str(entry.torrent),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            start_new_session=True,  # its finish script runs in its session
        )
        wait_for(self._listening, START_TIMEOUT, lambda: f"transmission-cli: {self.describe()}")

    @property
    def port(self) -> int:
        return self._port

    def _check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise ClientError(f"transmission-cli exited {code}: {tail(self.log)}")

    def _listening(self) -> bool:
        self._check_alive()
        return listening(self._port)

    def complete(self) -> bool:
        self._check_alive()
        if not self.marker.exists():
            return False
        got = self.marker.read_text().strip()
        if got != self.entry.v1:
            raise ClientError(f"transmission finished {got}, not {self.entry.infohash}")
        return True

    def describe(self) -> str:
        return f"exit={self.proc.poll()} finished={self.marker.exists()} log: {tail(self.log, 800)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)


# --------------------------------------------------------------------------- qBittorrent

QBT_CONF = """[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={port}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=127.0.0.1
Session\\QueueingSystemEnabled=false
Session\\MultiConnectionsPerIp=true
Session\\DefaultSavePath={save}
Session\\TempPathEnabled=false
Session\\AddTorrentPaused=false
Session\\GlobalMaxSeedingMinutes=-1
Session\\GlobalMaxRatio=-1

[Network]
PortForwardingEnabled=false

[Preferences]
Connection\\UPnP=false
Connection\\ResolvePeerCountries=false
General\\Locale=en
WebUI\\Enabled=true
WebUI\\Address=127.0.0.1
WebUI\\Port={webui}
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\UseUPnP=false
"""
# What the Web API must report once qBittorrent runs with that config.
QBT_EXPECTED = {
    "dht": False,
    "pex": False,
    "lsd": False,
    "upnp": False,
    "web_ui_upnp": False,
    "resolve_peer_countries": False,
    "current_interface_address": LOOPBACK,
    "bypass_local_auth": True,
}
QBT_SEEDING = {"uploading", "stalledUP", "forcedUP", "queuedUP"}
QBT_FAILED = {"error", "missingFiles"}


class QBittorrent:
    """One ``qbittorrent-nox`` process with a profile of its own; many torrents."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        profile = workdir / "profile"
        conf_dir = profile / "qBittorrent" / "config"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (workdir / "save").mkdir(exist_ok=True)
        self.port = free_port()
        self.webui_port = free_port()
        (conf_dir / "qBittorrent.conf").write_text(
            QBT_CONF.format(port=self.port, webui=self.webui_port, save=workdir / "save")
        )
        self.api = f"http://{LOOPBACK}:{self.webui_port}/api/v2"
        self.log = workdir / "qbittorrent.log"
        self.proc = subprocess.Popen(
            [_exe("qbittorrent-nox"), f"--profile={profile}", f"--webui-port={self.webui_port}"],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._api_up, START_TIMEOUT, lambda: f"qbittorrent-nox API: {self.describe()}")
            prefs = self.get("app/preferences").json()
            wrong = {k: prefs.get(k) for k, v in QBT_EXPECTED.items() if prefs.get(k) != v}
            if prefs.get("listen_port") != self.port:
                wrong["listen_port"] = prefs.get("listen_port")
            if wrong:
                raise ClientError(f"qbittorrent-nox ignored its config: {wrong}")
            # TCP only, as torrentds (bittorrent_protocol 1); no per-IP connection limit.
            self.post("app/setPreferences", data={"json": json.dumps({"bittorrent_protocol": 1})})
            self.version = self.get("app/version").text
        except BaseException:
            self.stop()
            raise

    def describe(self) -> str:
        return f"exit={self.proc.poll()} log: {tail(self.log, 800)}"

    def _api_up(self) -> bool:
        code = self.proc.poll()
        if code is not None:
            raise ClientError(f"qbittorrent-nox exited {code}: {tail(self.log)}")
        try:
            return self.get("app/version").ok
        except requests.RequestException:
            return False

    def get(self, route: str, **params: str) -> requests.Response:
        return requests.get(f"{self.api}/{route}", params=params, timeout=10)

    def post(self, route: str, **kwargs: Any) -> requests.Response:
        resp = requests.post(f"{self.api}/{route}", timeout=10, **kwargs)
        if not resp.ok:
            raise ClientError(f"qbittorrent POST {route}: {resp.status_code} {resp.text}")
        return resp

    def add(self, entry: Entry, savepath: Path, *, seed: bool) -> QbtTorrent:
        """Add the entry's .torrent (seed: data already at savepath/NAME, no check)."""
        if self.torrent(entry.torrent_id) is not None:
            raise ClientError(f"{entry.id} is already in this qBittorrent")
        savepath.mkdir(parents=True, exist_ok=True)
        resp = self.post(
            "torrents/add",
            files={"torrents": (entry.torrent.name, entry.torrent.read_bytes())},
            data={
                "savepath": str(savepath),
                "skip_checking": "true" if seed else "false",
                "paused": "false",
                "autoTMM": "false",
                "contentLayout": "Original",
                "sequentialDownload": "false",
            },
        )
        if resp.text.strip() != "Ok.":
            raise ClientError(f"qbittorrent refused {entry.torrent}: {resp.text!r}")
        wait_for(
            lambda: self.torrent(entry.torrent_id) is not None,
            10,
            lambda: f"{entry.id} ({entry.torrent_id}) to show in qBittorrent",
        )
        return QbtTorrent(self, entry, savepath)

    def torrent(self, torrent_id: str) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = self.get("torrents/info", hashes=torrent_id).json()
        return found[0] if found else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{self.api}/app/shutdown", timeout=5)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)


class QbtTorrent(Swarmer):
    """One torrent in a running qBittorrent."""

    client: ClientName = "qbittorrent"

    def __init__(self, qbt: QBittorrent, entry: Entry, dest: Path) -> None:
        self.qbt = qbt
        self.entry = entry
        self.dest = dest
        self.id = entry.torrent_id

    @property
    def port(self) -> int:
        return self.qbt.port

    def info(self) -> dict[str, Any]:
        if self.qbt.proc.poll() is not None:
            raise ClientError(f"qbittorrent-nox exited: {self.qbt.describe()}")
        found = self.qbt.torrent(self.id)
        if found is None:
            raise ClientError(f"{self.entry.id} is gone from qBittorrent")
        return found

    def complete(self) -> bool:
        t = self.info()
        if t["state"] in QBT_FAILED:
            raise ClientError(f"qbittorrent {self.entry.id}: state {t['state']}")
        return bool(t["progress"] >= 1.0 and t["state"] in QBT_SEEDING)

    def describe(self) -> str:
        try:
            t = self.info()
        except (ClientError, requests.RequestException) as exc:
            return str(exc)
        keys = ("state", "progress", "num_seeds", "num_leechs", "downloaded", "uploaded")
        return str({k: t.get(k) for k in keys})

    def connect(self, address: str) -> None:
        self.qbt.post("torrents/addPeers", data={"hashes": self.id, "peers": address})

    def peers(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.qbt.get("sync/torrentPeers", hash=self.id).json()
        peers: dict[str, Any] = doc.get("peers", {})
        return peers

    def stop(self, delete_files: bool = False) -> None:
        """Remove the torrent (and its files only when asked: a seeder's are the corpus)."""
        if self.qbt.proc.poll() is not None:
            return
        with contextlib.suppress(requests.RequestException, ClientError):
            self.qbt.post(
                "torrents/delete",
                data={"hashes": self.id, "deleteFiles": "true" if delete_files else "false"},
            )
            wait_for(lambda: self.qbt.torrent(self.id) is None, 10, lambda: "qbt delete")


# --------------------------------------------------------------------------- the fixture's object


class Clients:
    """Starts seeders and leechers of any client for one test; ``close`` stops them all.

    The two qBittorrent processes (one that seeds, one that leeches, so a torrent is never
    both) are shared by a module; each test adds its torrents and removes them again.
    """

    def __init__(
        self,
        workdir: Path,
        qbt_seeder: Callable[[], QBittorrent],
        qbt_leecher: Callable[[], QBittorrent],
    ) -> None:
        self.workdir = workdir
        self._qbt_seeder = qbt_seeder
        self._qbt_leecher = qbt_leecher
        self._running: list[Swarmer] = []
        self._leeched: list[QbtTorrent] = []

    def _dir(self, what: str) -> Path:
        n = len(self._running)
        path = self.workdir / f"{n:02d}-{what}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def seeder(
        self,
        client: ClientName,
        entry: Entry,
        *,
        tracker: str | None = None,
        wait: float = START_TIMEOUT,
    ) -> Swarmer:
        """``client`` seeding the entry's own data; returns once it serves every piece."""
        s: Swarmer
        if client == "aria2c":
            s = Aria2c(self._dir("aria2c-seed"), entry, entry.parent, seed=True, tracker=tracker)
        elif client == "transmission":
            assert tracker is None, "transmission-cli: trackers come from the .torrent"
            s = Transmission(self._dir("transmission-seed"), entry, entry.parent, seed=True)
        else:
            s = self._qbt_seeder().add(entry, entry.parent, seed=True)
        self._running.append(s)
        s.wait_complete(wait)
        return s

    def leecher(
        self, client: ClientName, entry: Entry, dest: Path, *, tracker: str | None = None
    ) -> Swarmer:
        """``client`` leeching the entry into ``dest`` (which receives NAME)."""
        s: Swarmer
        if client == "aria2c":
            s = Aria2c(self._dir("aria2c-leech"), entry, dest, seed=False, tracker=tracker)
        elif client == "transmission":
            assert tracker is None, "transmission-cli: trackers come from the .torrent"
            s = Transmission(self._dir("transmission-leech"), entry, dest, seed=False)
        else:
            s = self._qbt_leecher().add(entry, dest, seed=False)
            self._leeched.append(s)
        self._running.append(s)
        return s

    def close(self) -> None:
        for s in reversed(self._running):
            with contextlib.suppress(Exception):
                if isinstance(s, QbtTorrent):
                    s.stop(delete_files=s in self._leeched)
                else:
                    s.stop()
        self._running.clear()


class QbtPool:
    """The two qBittorrent processes of a module, started on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: dict[str, QBittorrent] = {}

    def _get(self, role: str) -> QBittorrent:
        if role not in self._procs:
            self._procs[role] = QBittorrent(self.workdir / f"qbittorrent-{role}")
        return self._procs[role]

    def seeder(self) -> QBittorrent:
        return self._get("seeder")

    def leecher(self) -> QBittorrent:
        return self._get("leecher")

    def close(self) -> None:
        for q in self._procs.values():
            q.stop()
        self._procs.clear()
