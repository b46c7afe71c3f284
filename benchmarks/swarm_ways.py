"""The four ways ``swarm.py`` ships a dataset to N hosts: what runs on the origin, what runs
on each leecher, and how a leecher tells that it is done."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness.aria2 import Aria2, done_time
from harness.data import Dataset
from harness.netns import Host
from harness.procs import Proc, Procs, wait_until
from harness.servers import Tracker, http_get, start_nginx

WAYS = ("torrentds", "aria2c", "http", "webseed")
WAY_LABELS = {
    "torrentds": "torrentds (seed + get)",
    "aria2c": "aria2c (seeder + leechers)",
    "http": "HTTP (nginx, N × curl)",
    "webseed": "torrentds, web seed only (nginx)",
}
TORRENTDS_WAYS = ("torrentds", "webseed")  # the ways whose leechers run torrentds get
BT_PORT = 6881
TRACKER_PORT = 6969
HTTP_PORT = 8080
TRACKER_OCTET = 2
ORIGIN_OCTET = 3
FIRST_LEECHER_OCTET = 11
TORRENTDS_NET = ["--no-dht", "--no-lsd", "--no-upnp", "--json"]
ARIA2_SEED_MINUTES = 1440  # leechers seed until the run stops them


@dataclass(frozen=True)
class Ctx:
    """What every run of one benchmark shares."""

    args: argparse.Namespace
    ds: Dataset  # the torrent names the tracker only
    webseed_torrent: Path  # the same info dict, plus the origin's nginx as BEP 19 web seed
    files: list[tuple[str, int]]  # (path in the dataset, bytes): what curl fetches
    prefix: str  # of every namespace's name
    hook: Path  # aria2c leechers' completion hook

    @property
    def http_url(self) -> str:
        return http_url(self.args.subnet)

    @property
    def aria2(self) -> Aria2:
        return Aria2(self.ds.torrent, tracker_url(self.args.subnet), BT_PORT, pex=True)


def tracker_url(subnet: str) -> str:
    return f"http://{subnet}.{TRACKER_OCTET}:{TRACKER_PORT}/announce"


def http_url(subnet: str) -> str:
    """The origin's nginx: the web seed, and where curl fetches from."""
    return f"http://{subnet}.{ORIGIN_OCTET}:{HTTP_PORT}/"


def start_origin(ctx: Ctx, way: str, procs: Procs, origin: Host) -> Proc:
    """The origin of ``way``: a torrentds or aria2c seeder, or nginx."""
    ds, args = ctx.ds, ctx.args
    if way == "torrentds":
        cmd = [
            *("seed", str(ds.folder), str(ds.torrent), "--skip-check"),
            *("--listen", f"{origin.ip}:{BT_PORT}", *TORRENTDS_NET),
        ]
        if args.seed_max_upload:
            cmd += ["--max-upload", args.seed_max_upload]
        return procs.torrentds("seeder", cmd, origin.ns)
    if way == "aria2c":
        return ctx.aria2.seeder(procs, origin, ds.folder.parent)
    return start_nginx(procs, origin, HTTP_PORT, ds.folder.parent, procs.logdir / "nginx")


def wait_origin(ctx: Ctx, way: str, proc: Proc, tracker: Tracker) -> None:
    """Until the origin serves: a seeder announced, or nginx answering the tracker's host."""
    if way in ("torrentds", "aria2c"):
        tracker.wait_seeding(ctx.ds.infohash, proc, ctx.args.ready_timeout)
        return
    url = f"{ctx.http_url}{quote(ctx.ds.name)}/torrentds.json"

    def serving() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.popen.returncode}: {proc.tail()}")
        return http_get(tracker.host, url) is not None

    wait_until(serving, ctx.args.ready_timeout, "nginx to serve")


class Leecher:
    """One leecher host's process and how to tell that it is done."""

    def __init__(self, way: str, proc: Proc, folder: Path, mark: Path | None = None) -> None:
        self.way = way
        self.proc = proc
        self.folder = folder  # where its copy of the dataset lands
        self.mark = mark  # aria2c's completion hook writes here

    def done_at(self) -> float | None:
        """When it had every byte (epoch s), or None yet."""
        if self.way in TORRENTDS_WAYS:
            return self.proc.first_time("completed")
        if self.mark is not None:
            return done_time(self.mark)
        return self.proc.ended if self.proc.poll() == 0 else None

    def failure(self) -> str | None:
        code = self.proc.poll()
        if code is None or (code == 0 and self.done_at() is not None):
            return None
        return f"{self.proc.label} exited with {code}: {self.proc.tail()}"


def start_leecher(ctx: Ctx, way: str, procs: Procs, i: int, host: Host, n: int) -> Leecher:
    """Leecher ``i`` of ``n`` on ``host``, fetching into a folder of its own."""
    label = f"leecher{i}"
    home = procs.logdir / label
    home.mkdir(parents=True)
    folder = home / ctx.ds.name
    if way in TORRENTDS_WAYS:
        proc = procs.torrentds(label, get_args(ctx, way, i, n, host, home), host.ns)
        return Leecher(way, proc, folder)
    if way == "aria2c":
        proc, mark = ctx.aria2.leecher(procs, label, host, home, ctx.hook, ARIA2_SEED_MINUTES)
        return Leecher(way, proc, folder, mark)
    base = f"{ctx.http_url}{quote(ctx.ds.name)}/"
    pairs: list[str] = []
    for path, _size in ctx.files:
        pairs += ["-o", str(folder / path), base + quote(path)]
    curl = ["curl", "--fail", "--silent", "--show-error", "--create-dirs"]
    proc = procs.start(label, [*curl, "--max-time", str(int(ctx.args.timeout)), *pairs], host.ns)
    return Leecher(way, proc, folder)


def get_args(ctx: Ctx, way: str, i: int, n: int, host: Host, home: Path) -> list[str]:
    """``torrentds get`` as leecher ``i`` of ``n``: a slice, a rank, or a plain get."""
    args = ctx.args
    torrent = ctx.ds.torrent if way == "torrentds" else ctx.webseed_torrent
    cmd = [
        *("get", str(torrent), "-d", str(home), "--seed-hours", "inf"),
        *("--no-default-trackers", "--listen", f"{host.ip}:{BT_PORT}", *TORRENTDS_NET),
    ]
    if args.window is not None:
        cmd += ["--window", str(args.window)]
    if args.ranked:
        cmd += ["--rank", str(i), "--world-size", str(n)]
    elif not args.no_slice:
        # --slice-count above N: the parts of peers that never came have no owner.
        cmd += ["--slice", f"{i}/{args.slice_count or n}"]
    return cmd
