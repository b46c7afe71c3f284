"""Bad input is refused in one line, never crashes, never silently misbehaves.

Host names in ``--peer``/``--listen``, the sidecar's config and its API; a
busy listen port; JSON and TOML that nest too deeply or hold huge numbers;
symlinks that would take a download out of its folder; the exit codes of an
interrupted ``get``. Real processes on loopback, nothing mocked, every wait
bounded. ``localhost`` resolves from /etc/hosts; a name with an empty label is
refused before any lookup; the one test that needs a well-formed name that
does not resolve runs ``torrentds`` in a network namespace of its own with no
interface (``unshare -n``), so its lookup fails without a packet leaving.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import CONSOLE_SCRIPT, ConsoleRun, assert_one_line_error
from tests.faults.helpers import assert_intact, seed
from tests.netfixtures import Dataset
from tests.procs import Torrentds, running, wait_until
from tests.test_sidecar import SESSION, Api, dataset_toml, start_sidecar
from torrentds.dataset.demo_data import make_tiny_imagenet

NOWHERE = "no-such-host.invalid"
BADNAME = "no-such..host"
# What every get and seed here passes besides --listen: no discovery (the
# torrent names no tracker).
QUIET = ["--no-dht", "--no-lsd", "--no-upnp"]


class ConsoleProc(Torrentds):
    """``Torrentds`` (JSON events read on a thread) run through the installed
    console script, as a user or a launch script runs it."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()


@pytest.fixture(scope="module")
def untracked(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """A ~1 MB dataset whose torrent names no tracker: peers come from --peer alone,
    so a download that completes proves the --peer value was dialled."""
    base = tmp_path_factory.mktemp("untracked")
    raw = make_tiny_imagenet(
        base / "tiny", classes=3, train_per_class=20, val_per_class=4, image_size=64
    )
    torrent = base / "tiny.torrent"
    out = subprocess.run(
        [
            *(str(CONSOLE_SCRIPT), "create", str(raw), "--no-default-trackers", "--json"),
            *("--shard-size", "256K", "--piece-size", "64K", "-o", str(torrent)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    doc = json.loads(out.stdout)
    return Dataset(Path(doc["dataset_dir"]), torrent, doc["infohash"], doc["name"], doc["bytes"])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def get_args(ds: Dataset, dest: Path, *extra: str) -> list[str]:
    return ["get", str(ds.torrent), "-d", str(dest), "--listen", "127.0.0.1:0", *QUIET, *extra]


# -- 1. host names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "peer_host"), [("localhost:0", "localhost"), ("[::1]:0", "[::1]")]
)
def test_peer_and_listen_take_host_names(
    untracked: Dataset, tmp_path: Path, console: ConsoleRun, listen: str, peer_host: str
) -> None:
    origin = seed(untracked, "--listen", listen)
    with running(origin):
        port = origin.port
        assert port > 0  # "localhost:0" used to be handed to libtorrent as a device: no port
        proc = console(*get_args(untracked, tmp_path, "--peer", f"{peer_host}:{port}"))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert_intact(tmp_path / untracked.name)


@pytest.mark.parametrize(
    ("command", "option", "value", "reason"),
    [
        ("get", "--peer", "localhost", "HOST:PORT"),
        ("get", "--peer", "localhost:0", "port must be 1-65535"),
        ("get", "--peer", "::1:7001", "brackets"),
        ("get", "--peer", "[localhost]:7001", "IPv6"),
        ("get", "--peer", f"{BADNAME}:7001", "not a host name"),
        ("get", "--listen", f"{BADNAME}:6881", "not a host name"),
        ("get", "--listen", "127.0.0.1:70000", "port must be 0-65535"),
        ("seed", "--peer", f"{BADNAME}:7001", "not a host name"),
        ("seed", "--listen", "localhost:x", "HOST:PORT"),
    ],
)
def test_bad_addresses_are_usage_errors(
    untracked: Dataset,
    tmp_path: Path,
    console: ConsoleRun,
    command: str,
    option: str,
    value: str,
    reason: str,
) -> None:
    dest = tmp_path / "dest"
    if command == "get":
        args = [*get_args(untracked, dest), option, value]
    else:
        args = ["seed", str(untracked.origin), str(untracked.torrent), *QUIET, option, value]
    line = assert_one_line_error(console(*args), f"{option} {value}", code=2)
    assert reason in line
    assert not dest.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare -n needs root")
def test_an_unresolvable_peer_is_a_usage_error(untracked: Dataset, tmp_path: Path) -> None:
    args = [*get_args(untracked, tmp_path / "dest"), "--peer", f"{NOWHERE}:7001"]
    done = subprocess.run(
        ["unshare", "-n", str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, timeout=60
    )
    line = assert_one_line_error(done, f"--peer {NOWHERE}:7001", code=2)
    assert "cannot resolve" in line


# -- 2. the listen port -------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_busy_listen_port_is_an_error(
    untracked: Dataset, tmp_path: Path, console: ConsoleRun, busy_port: int, host: str
) -> None:
    value = f"{host}:{busy_port}"
    proc = console(*get_args(untracked, tmp_path, "--listen", value))
    line = assert_one_line_error(proc, value, code=1)
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line
    proc = console("seed", str(untracked.origin), str(untracked.torrent), *QUIET, "--listen", value)
    assert_one_line_error(proc, value, code=1)
    conf = tmp_path / "sidecar.toml"
    conf.write_text(f'[session]\nlisten = "{value}"\n')
    proc = console("sidecar", "--config", str(conf), "--api", "127.0.0.1:0")
    assert_one_line_error(proc, value, code=1)


# -- 1 and 3. the sidecar's config --------------------------------------------


def test_sidecar_dataset_that_cannot_start_is_refused_alone(
    untracked: Dataset, tmp_path: Path
) -> None:
    origin = seed(untracked)
    with running(origin):
        port = origin.port
        conf = tmp_path / "sidecar.toml"
        source = str(untracked.torrent)
        conf.write_text(
            SESSION
            + dataset_toml(str(tmp_path / "missing.torrent"), tmp_path / "a", f"localhost:{port}")
            + dataset_toml(source, tmp_path / "b", f"localhost:{port}")
        )
        proc, api_port = start_sidecar(conf)
        with running(proc):
            error = proc.wait_event("error", 20)
            assert "missing.torrent" in error["message"]
            api = Api(api_port)
            done = api.wait_complete(untracked.infohash, 60)
            assert done["dataset_dir"] == str(tmp_path / "b" / untracked.name)
            assert list(api.status()) == [untracked.infohash]
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.finish(20) == 0, proc.stderr
    assert not (tmp_path / "a" / untracked.name).exists()
    assert_intact(tmp_path / "b" / untracked.name)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[[dataset]]\nsource = "x"\npeers = ["localhost"]\n', "dataset[0].peers"),
        ('[[dataset]]\nsource = "x"\npeers = ["::1:7001"]\n', "dataset[0].peers"),
        (f'[session]\nlisten = "{BADNAME}:0"\n', "session.listen"),
        (f'[[dataset]]\nsource = "x"\npeers = ["{BADNAME}:1"]\n', "dataset[0].peers"),
        ("a = " + "[" * 100_000, "nested too deeply"),
        ("a = " + "{b = " * 5_000, "nested too deeply"),
        ("a = " + "9" * 5_000, "digits"),
        ('[[dataset]]\nsource = "x"\ndir = ' + "[" * 200 + "]" * 200 + "\n", "dataset[0].dir"),
    ],
)
def test_bad_config_values_are_one_line(
    tmp_path: Path, console: ConsoleRun, body: str, named: str
) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(body)
    proc = console("sidecar", "--config", str(conf), "--api", "127.0.0.1:0")
    line = assert_one_line_error(proc, str(conf), code=1)
    assert named in line
    assert len(line) < 300


# -- 3 and 4. the HTTP API ----------------------------------------------------


@pytest.fixture
def sidecar_root(tmp_path: Path, untracked: Dataset) -> Iterator[tuple[Torrentds, Api, Path]]:
    """A sidecar with no dataset, data root ``tmp_path/root`` holding a copy of
    the .torrent (``root/tiny.torrent``)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "tiny.torrent").write_bytes(untracked.torrent.read_bytes())
    conf = tmp_path / "sidecar.toml"
    conf.write_text(SESSION + f'[api]\ndata_root = "{root}"\n')
    proc, port = start_sidecar(conf)
    with running(proc):
        yield proc, Api(port), root


def post_raw(api: Api, body: bytes) -> dict[str, Any]:
    resp = api.http.post(
        api.url + "/torrents",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"] == "application/json"
    doc: dict[str, Any] = resp.json()
    return doc


def test_api_bad_bodies_are_400(sidecar_root: tuple[Torrentds, Api, Path]) -> None:
    proc, api, _ = sidecar_root
    deep_value = "[" * 900 + "]" * 900  # parses (under the recursion limit), then is refused
    bodies = {
        "100,000 [": b"[" * 100_000,
        "100,000 {": b'{"a":' * 100_000,
        "a 5,000-digit source": b'{"source": ' + b"9" * 5_000 + b"}",
        "a 5,000-digit rank": b'{"source": "x", "dir": "d", "rank": -' + b"1" * 5_000 + b"}",
        "a deep dir": f'{{"source": "x", "dir": {deep_value}}}'.encode(),
        "a deep peer list": f'{{"source": "x", "dir": "d", "peers": {deep_value}}}'.encode(),
        "a long unknown key": b'{"' + b"k" * 100_000 + b'": 1, "dir": "d", "source": "x"}',
        # URLs no request can go to are bad input (400), not an upstream failure (502)
        "a URL with no host": b'{"source": "http://", "dir": "d"}',
        "a URL with a bad port": b'{"source": "http://localhost:99999999/x.torrent", "dir": "d"}',
        "a URL with a bad port name": b'{"source": "https://localhost:ab/x.torrent", "dir": "d"}',
    }
    for what, body in bodies.items():
        doc = post_raw(api, body)
        detail = doc["detail"]
        assert doc["error"] == "Bad Request", what
        assert "\n" not in detail and len(detail) < 300, (what, detail[:300])
        assert "Error" not in detail, (what, detail)  # no Python class names
        assert api.status() == {}, what
        assert proc.proc.poll() is None, what


def test_api_peers_resolve_or_are_refused(
    sidecar_root: tuple[Torrentds, Api, Path], untracked: Dataset
) -> None:
    _, api, root = sidecar_root
    source = str(root / "tiny.torrent")
    for peer, reason in [
        (f"{BADNAME}:7001", "not a host name"),
        ("localhost", "HOST:PORT"),
        ("[::1]", "HOST:PORT"),
    ]:
        body = {"source": source, "dir": str(root / "x"), "peers": [peer]}
        doc = api.call("POST", "/torrents", 400, json=body)
        assert peer in doc["detail"] and reason in doc["detail"], doc
    assert api.status() == {}
    origin = seed(untracked)
    with running(origin):
        body = {"source": source, "dir": str(root / "x"), "peers": [f"localhost:{origin.port}"]}
        api.call("POST", "/torrents", 201, json=body)
        api.wait_complete(untracked.infohash, 60)
    assert_intact(root / "x" / untracked.name)


def test_api_refuses_symlinks_out_of_dir(
    sidecar_root: tuple[Torrentds, Api, Path], untracked: Dataset, tmp_path: Path
) -> None:
    _, api, root = sidecar_root
    name = untracked.name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    torrent = str(root / "tiny.torrent")
    # The dataset folder itself, the state folder, a folder inside an existing dataset.
    (root / "d").mkdir()
    (root / "d" / name).symlink_to(elsewhere)
    (root / "s").mkdir()
    (root / "s" / ".torrentds").symlink_to(elsewhere)
    (root / "t" / name).mkdir(parents=True)
    (root / "t" / name / "train").symlink_to(elsewhere)
    for folder, link in [("d", name), ("s", ".torrentds"), ("t", f"{name}/train")]:
        body = {"source": torrent, "dir": str(root / folder), "no_default_trackers": True}
        doc = api.call("POST", "/torrents", 400, json=body)
        assert str(root / folder / link) in doc["detail"] and "outside" in doc["detail"], doc
    assert api.status() == {}
    origin = seed(untracked)
    with running(origin):
        peer = f"127.0.0.1:{origin.port}"
        # A magnet's name comes with its metadata: the dataset stops then, unwritten.
        magnet = f"magnet:?xt=urn:btih:{untracked.infohash}&dn={name}"
        body = {"source": magnet, "dir": str(root / "d"), "peers": [peer]}
        api.call("POST", "/torrents", 201, json=body)

        def failed() -> bool:
            return bool(api.status()[untracked.infohash]["state"] == "error")

        wait_until(failed, 30, "the magnet's dataset to stop at its metadata")
        assert str(root / "d" / name) in api.status()[untracked.infohash]["error"]
        api.call("DELETE", f"/torrents/{untracked.infohash}")
        # A symlink that stays inside dir is fine.
        (root / "ok" / "real").mkdir(parents=True)
        (root / "ok" / name).symlink_to(root / "ok" / "real")
        body = {"source": torrent, "dir": str(root / "ok"), "peers": [peer]}
        api.call("POST", "/torrents", 201, json=body)
        api.wait_complete(untracked.infohash, 60)
    assert_intact(root / "ok" / "real")
    assert list(elsewhere.iterdir()) == []


def test_get_api_refuses_a_symlinked_dataset_folder(
    untracked: Dataset, tmp_path: Path, console: ConsoleRun
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    (dest / ".torrentds").mkdir(parents=True)
    (dest / ".torrentds" / "resume").symlink_to(elsewhere)
    proc = console(*get_args(untracked, dest, "--api", "127.0.0.1:0", "--timeout", "5"))
    assert "outside" in assert_one_line_error(proc, str(dest / ".torrentds" / "resume"), code=1)
    assert list(elsewhere.iterdir()) == []


# -- 5. exit codes after a signal ---------------------------------------------


def interrupt(leecher: ConsoleProc, sig: signal.Signals) -> int:
    """Send ``sig`` once data is arriving; the exit code."""
    leecher.wait_event("progress", 30, where=lambda e: e["done"] > 0)
    leecher.proc.send_signal(sig)
    return leecher.finish(30)


def test_interrupted_get_exits_130_or_143_completed_get_exits_0(
    untracked: Dataset, tmp_path: Path
) -> None:
    slow = seed(untracked, "--max-upload", "64K")  # ~1 MB: about 15 s, never done in time
    with running(slow):
        args = [*get_args(untracked, tmp_path, "--json"), "--peer", f"127.0.0.1:{slow.port}"]
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            leecher = ConsoleProc(args)
            with running(leecher):
                assert interrupt(leecher, sig) == code, leecher.stderr
            lines = leecher.stderr.strip().splitlines()
            assert len(lines) == 1 and "interrupted" in lines[0], leecher.stderr
            assert sig.name in lines[0] and "run the same command again" in lines[0]
            done = leecher.events[-1]
            assert done["event"] == "done" and done["stopped"] is True
            assert done["shards_ready"] < done["shards_total"]
            assert "completed" not in [e["event"] for e in leecher.events]
            assert list((tmp_path / ".torrentds" / "resume").glob("*.resume"))
    fast = seed(untracked)
    with running(fast):
        args = [*get_args(untracked, tmp_path, "--json", "--seed-hours", "inf")]
        leecher = ConsoleProc([*args, "--peer", f"127.0.0.1:{fast.port}"])
        with running(leecher):
            leecher.wait_event("seeding", 60)
            leecher.proc.send_signal(signal.SIGTERM)
            assert leecher.finish(30) == 0, leecher.stderr
        assert "interrupted" not in leecher.stderr
        # A seeder stopped while seeding is a normal end too.
        fast.proc.send_signal(signal.SIGINT)
        assert fast.finish(30) == 0, fast.stderr
    assert_intact(tmp_path / untracked.name)


def test_sidecar_exits_0_on_sigint(tmp_path: Path) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(SESSION)
    proc, port = start_sidecar(conf)
    api = Api(port)
    with running(proc):
        assert api.call("GET", "/status") == {"torrents": []}
        proc.proc.send_signal(signal.SIGINT)
        assert proc.finish(20) == 0, proc.stderr
    assert "interrupted" not in proc.stderr
    with pytest.raises(requests.ConnectionError):
        api.call("GET", "/status")
