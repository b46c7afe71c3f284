"""The files in deploy/: each one parsed, and its fields checked against the CLI.

Commands in the files are parsed by the real click commands (a misspelt
option fails here), the ConfigMap's TOML by the real config parser.
"""

from __future__ import annotations

import configparser
import ipaddress
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml

from tests.conftest import CONSOLE_SCRIPT
from torrentds.cli import main
from torrentds.errors import ConfigError, UsageError
from torrentds.sidecar import config, server

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def parse_command(args: list[str]) -> click.Context:
    """``torrentds ARGS`` parsed by the real CLI (raises on an unknown option)."""
    assert args[0] == "torrentds", args
    command = main.get_command(click.Context(main), args[1])
    assert command is not None, f"no command {args[1]!r}"
    return command.make_context(args[1], args[2:])


def read_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((DEPLOY / "torrentds-sidecar.service").read_text())
    return unit


def test_systemd_unit_fields() -> None:
    unit = read_unit()
    service = unit["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert PurePosixPath(exec_start[0]).name == "torrentds"
    assert exec_start[1:3] == ["sidecar", "--config"]
    ctx = parse_command(["torrentds", *exec_start[1:]])
    assert str(ctx.params["config_path"]) == "/etc/torrentds/torrentds.toml"
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] in ("on-failure", "always")
    assert "-HUP" in service["ExecReload"] and "$MAINPID" in service["ExecReload"]
    # The sidecar exits within 10 s of SIGTERM; systemd must wait at least that.
    assert int(service["TimeoutStopSec"].rstrip("s")) >= 10
    assert "2" in service["RestartPreventExitStatus"].split()  # usage errors are not retried
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart's program exists: point it at this venv's script.
    text = (DEPLOY / "torrentds-sidecar.service").read_text()
    program = shlex.split(read_unit()["Service"]["ExecStart"])[0]
    unit = tmp_path / "torrentds-sidecar.service"
    unit.write_text(text.replace(program, str(CONSOLE_SCRIPT)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Unknown keys and unparsable values are only warnings ("…, ignoring"): fail on them.
    assert "unknown" not in output.lower() and "ignoring" not in output.lower(), output


def _k8s() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s-pod.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


def test_k8s_pod() -> None:
    docs = _k8s()
    assert set(docs) == {"Pod", "ConfigMap", "Secret"}
    spec = docs["Pod"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"torrentds", "trainer"}
    sidecar, trainer = containers["torrentds"], containers["trainer"]
    assert sidecar["image"].rsplit("/", 1)[-1].startswith("torrentds:")
    assert trainer["image"]

    # The data volume: an emptyDir mounted in both containers.
    volumes = {v["name"]: v for v in spec["volumes"]}
    shared = [name for name, v in volumes.items() if "emptyDir" in v]
    assert len(shared) == 1
    mounts = {
        name: {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        for name, c in containers.items()
    }
    data_dir = mounts["torrentds"][shared[0]]
    assert mounts["trainer"][shared[0]] == data_dir

    # The sidecar runs `torrentds sidecar --config FILE`, FILE from the ConfigMap.
    assert sidecar["command"][:3] == ["torrentds", "sidecar", "--config"]
    conf_path = PurePosixPath(parse_command(sidecar["command"]).params["config_path"])
    conf_volume = next(
        name for name, path in mounts["torrentds"].items() if path == str(conf_path.parent)
    )
    config_map = volumes[conf_volume]["configMap"]["name"]
    assert config_map == docs["ConfigMap"]["metadata"]["name"]
    toml_text = docs["ConfigMap"]["data"][conf_path.name]
    secret = docs["Secret"]["stringData"]["TORRENTDS_API_TOKEN"]
    conf = config.parse(tomllib.loads(toml_text), "ConfigMap")
    assert conf.datasets
    for ds in conf.datasets:
        assert str(ds.directory) == data_dir  # the shared volume
    # Probes reach the API through the pod IP: not loopback, so a token is needed.
    with pytest.raises(UsageError):
        server.check_bind(conf.api, None)
    _, api_port = server.check_bind(conf.api, secret)
    assert sidecar["envFrom"][0]["secretRef"]["name"] == docs["Secret"]["metadata"]["name"]
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports["api"] == api_port
    assert conf.session.listen is not None  # a pod's port is fixed: peers are told it
    assert ports["bittorrent"] == int(conf.session.listen.rsplit(":", 1)[1])
    for probe in ("readinessProbe", "livenessProbe"):
        get = sidecar[probe]["httpGet"]
        assert get["path"] == "/status"
        assert get["port"] in (api_port, "api")
        headers = {h["name"]: h["value"] for h in get["httpHeaders"]}
        assert headers["Authorization"] == f"Bearer {secret}"

    # The trainer waits for the first verified shard, then trains.
    script = " ".join(trainer["command"][2:]) if trainer["command"][0] == "sh" else ""
    assert trainer["command"][:2] == ["sh", "-c"]
    first, _, rest = script.partition("&&")
    wait = parse_command(shlex.split(first))
    assert wait.info_name == "wait"
    assert str(wait.params["folder"]).startswith(data_dir + "/")
    assert wait.params["split"] == "train" and wait.params["shards"] == 1
    assert "python" in rest


def test_compose() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"seed", "peer1", "peer2"}
    images = {s["image"] for s in services.values()}
    assert images == {"torrentds:demo"}
    assert (DEPLOY.parent / services["seed"]["build"]["dockerfile"]).is_file()

    (name,) = doc["networks"]
    subnet = ipaddress.ip_network(doc["networks"][name]["ipam"]["config"][0]["subnet"])
    assert doc["networks"][name]["internal"] is True
    address = {}
    for key, svc in services.items():
        ip = ipaddress.ip_address(svc["networks"][name]["ipv4_address"])
        assert ip in subnet
        address[key] = str(ip)
    assert len(set(address.values())) == 3

    seed_script = services["seed"]["command"][-1]
    assert "torrentds create" in seed_script and "exec torrentds seed" in seed_script
    for key in ("peer1", "peer2"):
        ctx = parse_command(services[key]["command"])
        assert ctx.info_name == "get"
        dialled = {p.rsplit(":", 1)[0] for p in ctx.params["peers"]}
        # Each peer dials the seed and the other peer, never itself.
        assert dialled == {address[k] for k in services if k != key}
        assert ctx.params["source"].startswith("/shared/")
        assert services["seed"]["healthcheck"]["test"][-1] == ctx.params["source"]
        assert services[key]["depends_on"]["seed"]["condition"] == "service_healthy"
        assert server.is_loopback(server.split_listen(ctx.params["api_listen"])[0])


def test_example_config() -> None:
    conf = config.load(DEPLOY / "torrentds.toml")
    assert conf.datasets and conf.api == config.DEFAULT_API
    assert config.data_roots(conf) == [Path("/data")]
    server.check_bind(conf.api, None)  # loopback: no token needed
    assert not (conf.session.dht or conf.session.lsd or conf.session.upnp)


def test_config_slice_reaches_the_get_options() -> None:
    doc = {"dataset": [{"source": "a.torrent", "slice": "2/6"}, {"source": "b.torrent"}]}
    conf = config.parse(doc, "torrentds.toml")
    assert [d.slice for d in conf.datasets] == ["2/6", None]
    # No window key: the default, so a slice is not refused for one it was never given.
    assert [d.window for d in conf.datasets] == [None, None]
    # A slice takes a window (the one every peer shares); with a rank it is refused
    # when the file is read, naming both.
    both = {"dataset": [{"source": "a", "slice": "2/6", "window": 4}]}
    assert config.parse(both, "torrentds.toml").datasets[0].window == 4
    ranked = {"dataset": [{"source": "a", "slice": "2/6", "rank": 1, "world_size": 6}]}
    with pytest.raises(ConfigError, match=r"--slice 2/6: orders by piece, --rank by shard"):
        config.parse(ranked, "torrentds.toml")
    with pytest.raises(ConfigError, match=r"dataset\[0\]\.slice must be str"):
        config.parse({"dataset": [{"source": "a", "slice": 2}]}, "torrentds.toml")
