"""The sidecar and its HTTP API, with real processes on 127.0.0.1 only.

A ``torrentds seed`` origin per dataset, a ``torrentds sidecar`` (or ``get
--api``) process with DHT/LSD/UPnP off, and plain HTTP requests against its
API: nothing is mocked, every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import assert_one_line_error
from tests.faults.helpers import assert_intact
from tests.netfixtures import Dataset, create_dataset
from tests.procs import (
    ISOLATED,
    TORRENTDS,
    Nginx,
    Opentracker,
    Torrentds,
    free_port,
    running,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    shutil.which("opentracker") is None, reason="needs Debian's opentracker (make setup)"
)

SESSION = """
[session]
listen = "127.0.0.1:0"
dht = false
lsd = false
upnp = false
"""


class Api:
    """Requests to one sidecar's API (never through a proxy from the environment)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.trust_env = False
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        resp = self.http.request(method, self.url + path, timeout=10, **kw)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        if resp.headers.get("Content-Type", "").startswith("application/json"):
            return resp.json()
        return resp.text

    def status(self) -> dict[str, dict[str, Any]]:
        return {t["infohash"]: t for t in self.call("GET", "/status")["torrents"]}

    def wait_complete(self, infohash: str, timeout: float) -> dict[str, Any]:
        def done() -> bool:
            t = self.status().get(infohash)
            return bool(
                t and t["state"] == "seeding" and t["shards_ready"] == t["shards_total"] > 0
            )

        wait_until(done, timeout, f"{infohash} to complete in the sidecar", interval=0.2)
        return self.status()[infohash]


def raw_request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    """A request with the path sent exactly as given (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_sidecar(conf: Path, *extra: str, api: str | None = None) -> tuple[Torrentds, int]:
    port = free_port()
    proc = Torrentds(
        ["sidecar", "--config", str(conf), "--json", "--api", api or f"127.0.0.1:{port}", *extra]
    )
    proc.wait_event("api", 20)
    return proc, port


def seeder(ds: Dataset) -> Torrentds:
    return Torrentds(["seed", str(ds.origin), str(ds.torrent), "--skip-check", "--json", *ISOLATED])


def dataset_toml(source: str, directory: Path, *peers: str, extra: str = "") -> str:
    return f"""
[[dataset]]
source = "{source}"
dir = "{directory}"
peers = {json.dumps(list(peers))}
no_default_trackers = true
{extra}
"""


def metrics(api: Api) -> dict[tuple[str, str], float]:
    """(sample name, torrent label) -> value, parsed by prometheus_client's own parser."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(api.call("GET", "/metrics")):
        for sample in family.samples:
            out[(sample.name, sample.labels.get("torrent", ""))] = sample.value
    return out


@pytest.fixture
def second(tmp_path: Path, tracker: Opentracker, web: tuple[Nginx, Path]) -> Dataset:
    """A second, web-seeded dataset; its .torrent inside the test's data root."""
    server, root = web
    base = tmp_path / "origin2"
    ds = create_dataset(
        base,
        tracker,
        "--web-seed",
        server.url,
        "--name",
        "sidecar-second",
        classes=3,
        per_class=20,
    )
    (root / ds.name).symlink_to(ds.origin)
    return ds


def test_api_round_trip_two_torrents(dataset: Dataset, second: Dataset, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    torrent2 = data / "second.torrent"
    shutil.copy(second.torrent, torrent2)
    origin = seeder(dataset)
    with running(origin):
        conf = tmp_path / "sidecar.toml"
        conf.write_text(
            SESSION
            + f'[api]\ndata_root = "{data}"\n'
            + dataset_toml(str(dataset.torrent), data, f"127.0.0.1:{origin.port}")
        )
        proc, port = start_sidecar(conf)
        api = Api(port)
        with running(proc):
            routes = api.call("GET", "/")["routes"]
            assert {r["path"].split("?")[0] for r in routes} >= {
                "/",
                "/status",
                "/shards",
                "/metrics",
                "/torrents",
                "/torrents/INFOHASH",
            }
            first = api.wait_complete(dataset.infohash, 60)
            assert first["name"] == dataset.name
            # The second one through the API, fetched from its web seed only.
            added = api.call(
                "POST",
                "/torrents",
                201,
                json={"source": str(torrent2), "dir": str(data), "seed_hours": "inf"},
            )
            assert added["infohash"] == second.infohash
            api.call("POST", "/torrents", 409, json={"source": str(torrent2), "dir": str(data)})
            both = api.wait_complete(second.infohash, 60)
            assert both["progress"] == 1.0
            assert api.status()[dataset.infohash]["state"] == "seeding"
            for ds in (dataset, second):
                assert_intact(data / ds.name)

            shards = api.call("GET", f"/shards?torrent={second.infohash}")["shards"]
            manifest = json.loads((data / second.name / "torrentds.json").read_text())
            assert sorted(s["path"] for s in shards) == sorted(
                s["path"] for s in manifest["shards"]
            )
            assert {s["state"] for s in shards} == {"ready"}
            val = api.call("GET", f"/shards?torrent={dataset.infohash}&split=val")["shards"]
            assert val and {s["split"] for s in val} == {"val"}
            everything = api.call("GET", "/shards")["shards"]
            assert {s["torrent"] for s in everything} == {dataset.infohash, second.infohash}
            api.call("GET", f"/shards?torrent={'0' * 40}", 404)

            m = metrics(api)
            for ds in (dataset, second):
                ready = sum(1 for s in everything if s["torrent"] == ds.infohash)
                assert m[("torrentds_shards_ready", ds.infohash)] == ready
                assert m[("torrentds_downloaded_bytes_total", ds.infohash)] >= ds.size
                assert ("torrentds_peers", ds.infohash) in m
                assert ("torrentds_hash_failures_total", ds.infohash) in m
                assert ("torrentds_seeding_seconds_total", ds.infohash) in m
            assert m[("torrentds_web_seed_bytes_total", second.infohash)] > 0
            assert m[("torrentds_web_seed_bytes_total", dataset.infohash)] == 0

            # `torrentds status`, plain text (not a TTY) and JSON.
            table = subprocess.run(
                [*TORRENTDS, "status", "--api", api.url],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            assert table.splitlines()[0].split()[:3] == ["NAME", "INFOHASH", "STATE"]
            assert dataset.name in table and second.name in table and "seeding" in table
            as_json = subprocess.run(
                [*TORRENTDS, "status", "--api", api.url, "--json"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            assert {t["infohash"] for t in json.loads(as_json)["torrents"]} == {
                dataset.infohash,
                second.infohash,
            }

            removed = api.call("DELETE", f"/torrents/{second.infohash}")
            assert removed["removed"]["infohash"] == second.infohash
            assert api.status()[second.infohash]["state"] == "done"
            assert (data / second.name / "torrentds.json").is_file()  # data kept
            api.call("DELETE", f"/torrents/{second.infohash}", 404)

            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.finish(10) == 0, proc.stderr
            assert time.monotonic() - started < 10
        resume = data / ".torrentds" / "resume"
        assert (resume / f"{dataset.infohash}.resume").is_file()
        assert (resume / f"{second.infohash}.resume").is_file()
        done = proc.wait_event("done", 1, where=lambda e: e.get("dataset") == dataset.name)
        assert done["stopped"] is True


def test_sighup_adds_and_removes_from_config(dataset: Dataset, tmp_path: Path) -> None:
    data = tmp_path / "data"
    origin = seeder(dataset)
    with running(origin):
        conf = tmp_path / "sidecar.toml"
        conf.write_text(SESSION + f'[api]\ndata_root = "{data}"\n')
        proc, port = start_sidecar(conf)
        api = Api(port)
        with running(proc):
            assert api.status() == {}
            conf.write_text(
                conf.read_text()
                + dataset_toml(str(dataset.torrent), data, f"127.0.0.1:{origin.port}")
            )
            proc.proc.send_signal(signal.SIGHUP)
            proc.wait_event("reloaded", 20)
            api.wait_complete(dataset.infohash, 60)
            assert_intact(data / dataset.name)
            # Dropped from the config: stopped, its files kept.
            conf.write_text(SESSION + f'[api]\ndata_root = "{data}"\n')
            proc.proc.send_signal(signal.SIGHUP)
            proc.wait_event("removed", 20, where=lambda e: e["infohash"] == dataset.infohash)
            assert api.status()[dataset.infohash]["state"] == "done"
            # A broken config is reported and changes nothing.
            conf.write_text("[session\n")
            proc.proc.send_signal(signal.SIGHUP)
            error = proc.wait_event("error", 20, where=lambda e: e.get("source") == "reload")
            assert "not valid TOML" in error["message"]
            assert api.call("GET", "/status")["torrents"]
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.finish(10) == 0, proc.stderr
        assert (data / dataset.name / "torrentds.json").is_file()


def test_get_with_api_exits_when_seeding_is_done(dataset: Dataset, tmp_path: Path) -> None:
    origin = seeder(dataset)
    with running(origin):
        port = free_port()
        leecher = Torrentds(
            [
                "get",
                str(dataset.torrent),
                "-d",
                str(tmp_path),
                "--json",
                *ISOLATED,
                "--peer",
                f"127.0.0.1:{origin.port}",
                "--seed-hours",
                "0.001",
                "--api",
                f"127.0.0.1:{port}",
            ]
        )
        with running(leecher):
            leecher.wait_event("api", 20)
            api = Api(port)
            leecher.wait_event("completed", 60)
            t = api.status()[dataset.infohash]
            assert t["state"] == "seeding" and 0 < t["seeding_left"] <= 3.6
            assert {s["state"] for s in api.call("GET", "/shards")["shards"]} == {"ready"}
            assert leecher.finish(20) == 0, leecher.stderr
        kinds = [e["event"] for e in leecher.events]
        assert "progress" in kinds and kinds[-1] == "done"  # get's own events, unchanged
        assert leecher.events[-1]["stopped"] is False
        with pytest.raises(requests.ConnectionError):
            api.call("GET", "/status")
        assert_intact(tmp_path / dataset.name)


@contextlib.contextmanager
def idle_sidecar(base: Path) -> Iterator[tuple[Torrentds, int, Path]]:
    """A running sidecar with no dataset on loopback, its port and its data root
    (``base/data``, holding inside.txt; ``base/secret.txt`` lies outside it)."""
    data = base / "data"
    data.mkdir()
    (base / "secret.txt").write_text("TOP-SECRET-OUTSIDE")
    (data / "inside.txt").write_text("INSIDE-THE-ROOT")
    conf = base / "sidecar.toml"
    conf.write_text(SESSION + f'[api]\ndata_root = "{data}"\n')
    proc, port = start_sidecar(conf)
    with running(proc):
        yield proc, port, data


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    """A sidecar with no dataset on loopback, and its data root."""
    with idle_sidecar(tmp_path_factory.mktemp("idle")) as (_, port, data):
        yield Api(port), data


@pytest.mark.parametrize(
    "path",
    [
        "/shards/../..",
        "/shards/../../secret.txt",
        "/../secret.txt",
        "/%2e%2e/%2e%2e/secret.txt",
        "/status/..%2f..%2fsecret.txt",
        "//secret.txt",
        "/data/inside.txt",
        "/inside.txt",
        "/torrents/../../secret.txt",
        "/torrents/" + "0" * 40 + "/../../secret.txt",
    ],
)
def test_paths_never_read_files(idle: tuple[Api, Path], path: str) -> None:
    api, _ = idle
    for method in ("GET", "DELETE"):
        status, body = raw_request(api.port, method, path)
        assert status == 404, (method, path, status, body)
        assert b"SECRET" not in body and b"INSIDE-THE-ROOT" not in body
        doc = json.loads(body)
        assert doc["error"] == "Not Found" and doc["detail"]


def test_shards_query_cannot_name_files(idle: tuple[Api, Path]) -> None:
    api, _ = idle
    status, body = raw_request(api.port, "GET", "/shards?torrent=../../secret.txt")
    assert status == 404 and b"SECRET" not in body
    status, body = raw_request(api.port, "GET", "/shards?split=../../secret.txt")
    assert status == 200 and json.loads(body) == {"shards": []}


def test_post_dir_must_be_inside_data_root(idle: tuple[Api, Path], tmp_path: Path) -> None:
    api, data = idle
    magnet = {"source": "0" * 40, "no_default_trackers": True}
    outside = [str(tmp_path), "/etc", "../", str(data / ".." / "elsewhere")]
    (data / "escape").symlink_to(tmp_path)
    outside.append(str(data / "escape"))
    for directory in outside:
        doc = api.call("POST", "/torrents", 400, json={**magnet, "dir": directory})
        assert "data root" in doc["detail"], doc
    assert not list(tmp_path.iterdir())
    # A .torrent path is a file name too: outside the root it is refused unread.
    doc = api.call("POST", "/torrents", 400, json={"source": "/etc/passwd", "dir": str(data)})
    assert "data root" in doc["detail"] and "root:" not in doc["detail"]
    assert api.status() == {}


def test_api_errors(idle: tuple[Api, Path]) -> None:
    api, data = idle
    doc = api.call(
        "POST", "/torrents", 400, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert doc["error"] == "Bad Request" and "JSON" in doc["detail"]
    doc = api.call("POST", "/torrents", 400, json=["a list"])
    assert "object" in doc["detail"]
    doc = api.call(
        "POST", "/torrents", 400, json={"source": "0" * 40, "dir": str(data), "bogus": 1}
    )
    assert "unknown key 'bogus'" in doc["detail"]
    doc = api.call("POST", "/torrents", 400, json={"source": "0" * 40})
    assert "'dir' is required" in doc["detail"]
    doc = api.call("POST", "/torrents", 400, json={"source": "nothex", "dir": str(data)})
    assert "data root" in doc["detail"] or "not a magnet" in doc["detail"]
    doc = api.call(
        "POST", "/torrents", 400, json={"source": "magnet:?xt=urn:btih:zz", "dir": str(data)}
    )
    assert "magnet" in doc["detail"]
    doc = api.call("POST", "/torrents", 400, json={"source": "0" * 40, "dir": str(data), "rank": 3})
    assert "rank" in doc["detail"]
    big = b'{"source": "' + b"x" * (1 << 20) + b'"}'
    doc = api.call("POST", "/torrents", 400, data=big, headers={"Content-Type": "application/json"})
    assert "over" in doc["detail"]
    doc = api.call("POST", "/torrents", 400, data=b"{}", headers={"Content-Type": "text/plain"})
    assert "application/json" in doc["detail"]
    doc = api.call(
        "POST", "/torrents", 502, json={"source": "http://127.0.0.1:1/x.torrent", "dir": str(data)}
    )
    assert doc["error"] == "Bad Gateway"
    api.call("GET", "/torrents", 405)
    api.call("POST", "/status", 405)
    api.call("PUT", "/torrents/" + "a" * 40, 405)
    api.call("DELETE", "/torrents/" + "a" * 40, 404)
    api.call("GET", "/nothing", 404)
    # A page reaching the API through a rebinding DNS name is refused.
    status, _ = raw_request(api.port, "GET", "/status", {"Host": "evil.example:8700"})
    assert status == 403
    assert api.status() == {}


def test_token_required_beyond_loopback(tmp_path: Path) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(SESSION)
    port = free_port()
    # Bound to every interface, but only ever reached through 127.0.0.1 here.
    proc = Torrentds(
        [
            "sidecar",
            "--config",
            str(conf),
            "--json",
            "--api",
            f"0.0.0.0:{port}",
            "--api-token",
            "s3cret",
        ]
    )
    with running(proc):
        proc.wait_event("api", 20)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, body = raw_request(port, "GET", "/status", headers)
            assert status == 401, headers
            assert json.loads(body)["error"] == "Unauthorized"
        status, _ = raw_request(port, "GET", "/nothing", {})
        assert status == 401  # no route is even looked up
        assert Api(port, "s3cret").call("GET", "/status") == {"torrents": []}
        env = {k: v for k, v in os.environ.items() if k != "TORRENTDS_API_TOKEN"}
        url = f"http://127.0.0.1:{port}"
        refused = subprocess.run(
            [*TORRENTDS, "status", "--api", url],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        assert_one_line_error(refused, "401")
        allowed = subprocess.run(
            [*TORRENTDS, "status", "--api", url],
            capture_output=True,
            text=True,
            timeout=30,
            env={**env, "TORRENTDS_API_TOKEN": "s3cret"},
        )
        assert allowed.returncode == 0 and "no torrents" in allowed.stdout


@pytest.mark.parametrize("command", ["sidecar", "get"])
def test_non_loopback_without_token_is_refused(tmp_path: Path, command: str) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(SESSION)
    port = free_port()
    args = (
        ["sidecar", "--config", str(conf)]
        if command == "sidecar"
        else ["get", "0" * 40, "-d", str(tmp_path), "--no-default-trackers", *ISOLATED]
    )
    env = {k: v for k, v in os.environ.items() if k != "TORRENTDS_API_TOKEN"}
    proc = subprocess.run(
        [*TORRENTDS, *args, "--api", f"0.0.0.0:{port}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    line = assert_one_line_error(proc, f"0.0.0.0:{port}", code=2)
    assert "token" in line
    assert not (tmp_path / ".torrentds").exists()


def test_status_unreachable_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*TORRENTDS, "status", "--api", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    line = assert_one_line_error(proc, "127.0.0.1", code=1)
    assert "not reachable" in line


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(SESSION + '[[dataset]]\nsource = "x"\nwindow = "three"\n')
    proc = subprocess.run(
        [*TORRENTDS, "sidecar", "--config", str(conf)], capture_output=True, text=True, timeout=30
    )
    line = assert_one_line_error(proc, str(conf), code=1)
    assert "dataset[0].window" in line


def test_failing_dataset_stops_alone_and_tells_readers(dataset: Dataset, tmp_path: Path) -> None:
    data = tmp_path / "data"
    conf = tmp_path / "sidecar.toml"
    # No peer can serve it: it gives up after 2 s; the sidecar keeps serving.
    conf.write_text(SESSION + dataset_toml(str(dataset.torrent), data, extra="timeout = 2"))
    proc, port = start_sidecar(conf)
    api = Api(port)
    with running(proc):
        error = proc.wait_event("error", 20, where=lambda e: e.get("dataset") == dataset.name)
        assert "gave up after 2 s" in error["message"]
        assert api.status()[dataset.infohash]["state"] == "error"
        report = json.loads((data / dataset.name / ".torrentds" / "error.json").read_text())
        assert report["message"] == error["message"]
        waited = subprocess.run(
            [*TORRENTDS, "wait", str(data / dataset.name), "--timeout", "20"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert waited.returncode == 1 and "gave up after 2 s" in waited.stderr
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.finish(10) == 0, proc.stderr
