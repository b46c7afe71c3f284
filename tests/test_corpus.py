"""Real-world torrents and real clients, exercised through the ``torrentds`` console script.

The corpus (``tests/corpus.py``) holds torrents made by mktorrent, transmission-create,
libtorrent (v1, hybrid with pad files, v2-only), torrentds itself and by hand; the clients
(``tests/clients.py``) are aria2c, transmission-cli and qbittorrent-nox. For each entry:

- (a) ``info --json`` reports libtorrent's info-hash (v1, or v2 for a v2-only torrent) and a
  magnet holding it, and lists no pad files;
- (b) ``get`` of the .torrent from a real seeder of another client writes the same bytes,
  a single-file torrent as the file ``DIR/NAME``;
- (c) ``get`` of a hybrid torrent's magnet (btih, btmh, both) from qBittorrent;
- (d) ``seed`` serves a real leecher of another client, which completes with equal bytes;
- (e) ``verify`` passes on the data and fails naming the file after one byte is flipped.

And a dataset update: v2 of a dataset with one shard changed, fetched into the folder that
holds v1, downloads about that shard only.

The client-to-client tests at the top check the fixtures themselves, without torrentds.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients import Clients, QbtPool, Swarmer, wait_for
from tests.corpus import (
    MIB,
    SPEC_BY_ID,
    SPECS,
    TORRENTDS,
    ClientName,
    Corpus,
    Entry,
    copy_data,
    flip_byte,
    same_bytes,
    sha256_file,
    write_random,
)
from tests.procs import Opentracker, Torrentds

GET_TIMEOUT = 60  # torrentds get --timeout
LEECH_TIMEOUT = 60.0  # a real leecher fed by torrentds seed
NET = ["--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp"]

Event = dict[str, Any]


def entry_params() -> list[Any]:
    return [
        pytest.param(s.id, marks=[pytest.mark.slow, pytest.mark.timeout(900)] if s.slow else [])
        for s in SPECS
    ]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def qbt_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QbtPool]:
    pool = QbtPool(tmp_path_factory.mktemp("qbt"))
    yield pool
    pool.close()


@pytest.fixture
def clients(tmp_path: Path, qbt_pool: QbtPool) -> Iterator[Clients]:
    c = Clients(tmp_path / "clients", qbt_pool.seeder, qbt_pool.leecher)
    yield c
    c.close()


# --------------------------------------------------------------------------- helpers


def torrentds(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The console script, to completion (bounded)."""
    return subprocess.run(
        [str(TORRENTDS), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def events(proc: subprocess.CompletedProcess[str]) -> list[Event]:
    out = []
    for line in proc.stdout.splitlines():
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def why(proc: subprocess.CompletedProcess[str]) -> str:
    """The failure line: torrentds' last stderr line, else its last ``error`` event."""
    lines = proc.stderr.strip().splitlines()
    if lines:
        return lines[-1]
    errors = [e for e in events(proc) if e.get("event") == "error"]
    return str(errors[-1]) if errors else proc.stdout[-300:]


def get(source: str, dest: Path, peer: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = ["get", source, "-d", str(dest), "--no-default-trackers", "--peer", peer]
    args += [*NET, "--json", "--timeout", str(GET_TIMEOUT)]
    return torrentds(*args, cwd=cwd, timeout=GET_TIMEOUT + 30)


def assert_got(entry: Entry, proc: subprocess.CompletedProcess[str], dest: Path) -> None:
    """``get`` exited 0 and ``dest/NAME`` holds the entry's bytes (a file if single-file)."""
    assert proc.returncode == 0, f"get exited {proc.returncode}: {why(proc)}"
    root = dest / entry.name
    if entry.single_file:
        assert root.is_file(), f"{root} is not a file (single-file torrent)"
    else:
        assert root.is_dir(), f"{root} is not a folder"
    bad = same_bytes(entry, root)
    assert not bad, f"differ from the original or missing: {bad}"


def largest(entry: Entry) -> str:
    return max(entry.files, key=lambda f: f[1])[0]


# --------------------------------------------------------------------------- the clients alone


CLIENT_PAIRS = [
    ("aria2c", "aria2c", "mktorrent-single-bin"),  # through the local opentracker
    ("aria2c", "qbittorrent", "mktorrent-multi"),  # qBittorrent dials the aria2c seeder
    ("qbittorrent", "aria2c", "libtorrent-v1-single-tar"),  # ... and the aria2c leecher
    # transmission 3.00 unchokes only on its 10 s rounds: ~15 s each; its
    # torrentds cases below still run in `make test`, these two in `make test-all`.
    pytest.param("transmission", "qbittorrent", "transmission-multi", marks=pytest.mark.slow),
    pytest.param("qbittorrent", "transmission", "mktorrent-multi", marks=pytest.mark.slow),
    ("qbittorrent", "qbittorrent", "libtorrent-hybrid"),
    ("qbittorrent", "qbittorrent", "libtorrent-v2"),
    ("qbittorrent", "qbittorrent", "handmade-unsorted"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("seeder", "leecher", "entry_id"), CLIENT_PAIRS)
def test_clients_trade_without_torrentds(
    seeder: ClientName,
    leecher: ClientName,
    entry_id: str,
    corpus: Corpus,
    clients: Clients,
    tracker: Opentracker,
    tmp_path: Path,
) -> None:
    """The fixtures work: each client seeds and leeches the corpus on its own."""
    entry = corpus[entry_id]
    use_tracker = "qbittorrent" not in (seeder, leecher)
    if use_tracker:
        assert entry.v1
        tracker.allow(entry.v1)
    url = tracker.url if use_tracker else None
    s = clients.seeder(seeder, entry, tracker=url)
    dest = tmp_path / "leech"
    lee = clients.leecher(leecher, entry, dest, tracker=url)
    if leecher == "qbittorrent":
        lee.connect(s.address)
    elif seeder == "qbittorrent":
        s.connect(lee.address)
    lee.wait_complete(60)
    bad = same_bytes(entry, dest / entry.name)
    assert not bad, f"{leecher} from {seeder}: differ or missing: {bad}"
    if entry.single_file:
        assert (dest / entry.name).is_file()


# --------------------------------------------------------------------------- (a) info


@pytest.mark.timeout(60)
@pytest.mark.parametrize("entry_id", entry_params())
def test_info_reports_libtorrents_infohash(entry_id: str, corpus: Corpus, tmp_path: Path) -> None:
    entry = corpus[entry_id]
    proc = torrentds("info", "--json", str(entry.torrent), cwd=tmp_path)
    assert proc.returncode == 0, f"info exited {proc.returncode}: {why(proc)}"
    doc = json.loads(proc.stdout)
    assert doc["infohash"] == entry.infohash, (
        f"infohash {doc['infohash']} != libtorrent's {entry.kind} hash {entry.infohash}"
    )
    if entry.kind == "v2":
        assert f"xt=urn:btmh:1220{entry.v2}" in doc["magnet"], doc["magnet"]
    else:
        assert f"xt=urn:btih:{entry.v1}" in doc["magnet"], doc["magnet"]
    files = [(str(p), int(n)) for p, n in doc["files"]]
    pads = [p for p, _ in files if ".pad" in Path(p).parts]
    assert not pads, f"pad files listed: {pads}"
    if entry.single_file:
        assert len(files) == 1, files
        assert Path(files[0][0]).name == entry.name and files[0][1] == entry.files[0][1], files
    else:
        assert sorted(files) == sorted(entry.files)
    assert doc["size"] == sum(n for _, n in entry.files)


# --------------------------------------------------------------------------- (b) get


@pytest.mark.timeout(180)
@pytest.mark.parametrize("entry_id", entry_params())
def test_get_from_real_seeder(
    entry_id: str, corpus: Corpus, clients: Clients, tmp_path: Path
) -> None:
    entry = corpus[entry_id]
    seeder = clients.seeder(SPEC_BY_ID[entry_id].seeder, entry, wait=300)
    dest = tmp_path / "dl"
    proc = get(str(entry.torrent), dest, seeder.address, tmp_path)
    assert_got(entry, proc, dest)


# --------------------------------------------------------------------------- (c) magnets


MAGNETS = [
    ("libtorrent-hybrid", "btih"),
    ("libtorrent-hybrid", "btmh"),
    ("libtorrent-hybrid", "both"),
    ("libtorrent-v2", "btmh"),
]


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("entry_id", "topics"), MAGNETS)
def test_get_magnet_from_qbittorrent(
    entry_id: str, topics: str, corpus: Corpus, clients: Clients, tmp_path: Path
) -> None:
    entry = corpus[entry_id]
    seeder = clients.seeder("qbittorrent", entry)
    magnet = entry.magnet(btih=topics != "btmh", btmh=topics != "btih")
    dest = tmp_path / "dl"
    proc = get(magnet, dest, seeder.address, tmp_path)
    assert_got(entry, proc, dest)


# --------------------------------------------------------------------------- (d) seed


def seed_failed(seed: Torrentds, code: int) -> AssertionError:
    """``seed exited CODE: <its error line>`` (stderr is read to its end on a thread)."""
    seed.finish(5)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: bool(seed.stderr), 5, lambda: "seed's stderr")
    lines = seed.stderr.strip().splitlines()
    errors = [e["message"] for e in seed.events if e.get("event") == "error"]
    return AssertionError(f"seed exited {code}: {lines[-1] if lines else errors[-1:]}")


def listen_port(seed: Torrentds, timeout: float = 60) -> int:
    """The port from the ``started`` event; a seed that exits first fails with its error."""
    try:
        return int(seed.wait_event("started", timeout)["listen_port"])
    except AssertionError:
        code = seed.proc.poll()
        if code is None:
            raise
        raise seed_failed(seed, code) from None


def wait_leecher(leecher: Swarmer, seed: Torrentds, timeout: float) -> None:
    """Until the leecher completes; fails at once, with torrentds' error, if the seed exits."""

    def done() -> bool:
        code = seed.proc.poll()
        if code is not None:
            raise seed_failed(seed, code)
        return leecher.complete()

    wait_for(done, timeout, lambda: f"{leecher.client} leecher: {leecher.describe()}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("entry_id", entry_params())
def test_seed_to_real_leecher(
    entry_id: str, corpus: Corpus, clients: Clients, tmp_path: Path
) -> None:
    entry = corpus[entry_id]
    origin = copy_data(entry, tmp_path / "origin")  # seed never touches the corpus itself
    dest = tmp_path / "leech"
    leecher = clients.leecher(SPEC_BY_ID[entry_id].leecher, entry, dest)
    seed = Torrentds(
        ["seed", str(origin), str(entry.torrent), "--json", *NET, "--peer", leecher.address]
    )
    try:
        port = listen_port(seed)
        if leecher.client == "qbittorrent":
            leecher.connect(f"127.0.0.1:{port}")
        wait_leecher(leecher, seed, 600 if SPEC_BY_ID[entry_id].slow else LEECH_TIMEOUT)
    finally:
        seed.kill()
    bad = same_bytes(entry, dest / entry.name)
    assert not bad, f"{leecher.client} leecher: differ or missing: {bad}"


# --------------------------------------------------------------------------- (e) verify


@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry_id", entry_params())
def test_verify_passes_then_names_the_flipped_file(
    entry_id: str, corpus: Corpus, tmp_path: Path
) -> None:
    entry = corpus[entry_id]
    copy = copy_data(entry, tmp_path / "copy")
    ok = torrentds("verify", str(copy), "--torrent", str(entry.torrent), cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, f"verify of intact data exited {ok.returncode}: {why(ok)}"
    victim = largest(entry)
    flip_byte(entry.path_of(victim, copy))
    bad = torrentds("verify", str(copy), "--torrent", str(entry.torrent), cwd=tmp_path, timeout=300)
    assert bad.returncode == 1, f"verify after a flipped byte exited {bad.returncode}: {why(bad)}"
    output = bad.stdout + bad.stderr
    assert victim in output, f"{victim!r} not named: {output[-500:]!r}"


# --------------------------------------------------------------------------- dataset update


SAMPLES = 64


def make_samples(src: Path) -> None:
    """64 generic samples of 28-30 KB: four to a 128 KiB shard, sixteen shards."""
    import random

    rng = random.Random(20240601)
    for i in range(SAMPLES):
        write_random(src / f"sample-{i:03d}.bin", rng.randrange(28_000, 30_000), rng)


def create(src: Path, shards_dir: Path, torrent: Path, cwd: Path) -> dict[str, Any]:
    proc = torrentds(
        "create",
        str(src),
        "--no-default-trackers",
        "--shard-size",
        "128K",
        "--piece-size",
        "16K",
        "--shards-dir",
        str(shards_dir),
        "--name",
        "updata",
        "-o",
        str(torrent),
        "--json",
        cwd=cwd,
    )
    assert proc.returncode == 0, f"create exited {proc.returncode}: {why(proc)}"
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def manifest(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "torrentds.json").read_text())
    return doc


def seed_and_get(shards: Path, torrent: Path, dest: Path, cwd: Path) -> list[Event]:
    seed = Torrentds(["seed", str(shards), str(torrent), "--skip-check", "--json", *NET])
    try:
        proc = get(str(torrent), dest, f"127.0.0.1:{listen_port(seed)}", cwd)
        assert proc.returncode == 0, f"get {torrent.name} exited {proc.returncode}: {why(proc)}"
        return events(proc)
    finally:
        seed.kill()


@pytest.mark.timeout(240)
def test_dataset_update_fetches_only_the_changed_shard(tmp_path: Path) -> None:
    src = tmp_path / "src" / "updata"
    make_samples(src)
    v1 = create(src, tmp_path / "v1" / "updata", tmp_path / "v1.torrent", tmp_path)
    m1 = manifest(Path(v1["dataset_dir"]))
    assert len(m1["shards"]) >= 12, f"only {len(m1['shards'])} shards"
    dl = tmp_path / "dl"
    seed_and_get(Path(v1["dataset_dir"]), tmp_path / "v1.torrent", dl, tmp_path)

    # Change one sample of the middle shard, same length: only that shard changes.
    middle = m1["shards"][len(m1["shards"]) // 2]
    with tarfile.open(Path(v1["dataset_dir"]) / middle["path"]) as tar:
        member = next(m.name for m in tar.getmembers() if m.isfile())
    sample = src / (member.split(".", 1)[0] + ".bin")
    assert sample.is_file(), f"{member} in {middle['path']}: no source file {sample}"
    flip_byte(sample)
    v2 = create(src, tmp_path / "v2" / "updata", tmp_path / "v2.torrent", tmp_path)
    m2 = manifest(Path(v2["dataset_dir"]))
    before = {s["path"]: s for s in m1["shards"]}
    changed = [s for s in m2["shards"] if before[s["path"]]["sha256"] != s["sha256"]]
    assert [s["path"] for s in changed] == [middle["path"]], "the test's edit changed other shards"
    assert [s["bytes"] for s in m2["shards"]] == [s["bytes"] for s in m1["shards"]]

    evs = seed_and_get(Path(v2["dataset_dir"]), tmp_path / "v2.torrent", dl, tmp_path)
    folder = dl / "updata"
    # Every v2 shard has a ready line with the v2 manifest's sha256.
    ready = [
        json.loads(line)
        for line in (folder / ".torrentds" / "ready.jsonl").read_text().splitlines()
    ]
    logged = {(r["path"], r["sha256"]) for r in ready}
    missing = [s["path"] for s in m2["shards"] if (s["path"], s["sha256"]) not in logged]
    assert not missing, f"no ready line with the v2 sha256 for {missing}"
    for s in m2["shards"]:
        assert sha256_file(folder / s["path"]) == s["sha256"], s["path"]
    # The readers agree.
    waited = torrentds("wait", str(folder), "--all", "--timeout", "30", cwd=tmp_path, timeout=60)
    assert waited.returncode == 0, f"wait exited {waited.returncode}: {why(waited)}"
    urls = torrentds("urls", str(folder), cwd=tmp_path)
    assert urls.returncode == 0, f"urls exited {urls.returncode}: {why(urls)}"
    listed = sorted(str(Path(line).resolve()) for line in urls.stdout.split())
    want = sorted(str((folder / s["path"]).resolve()) for s in m2["shards"])
    assert listed == want, f"urls listed {len(listed)} paths, want each of {len(want)} once"
    # Only about the changed shard came over the wire (plus the manifest and SHA256SUMS).
    done = [e for e in evs if e.get("event") == "done"]
    assert done, f"no done event in {evs[-3:]}"
    v2_dir = Path(v2["dataset_dir"])
    tail = (v2_dir / "torrentds.json").stat().st_size + (v2_dir / "SHA256SUMS").stat().st_size
    limit = 1.2 * changed[0]["bytes"] + tail
    assert done[-1]["downloaded"] <= limit, (
        f"downloaded {done[-1]['downloaded']} bytes for one changed shard of "
        f"{changed[0]['bytes']} (limit {limit:.0f}; whole dataset {v2['bytes']})"
    )


def test_corpus_is_what_it_says(corpus: Corpus) -> None:
    """The builder's own promises: kinds, pad files, the empty file last, piece counts."""
    kinds = {e.id: e.kind for e in corpus}
    assert kinds.pop("libtorrent-hybrid") == "hybrid"
    assert kinds.pop("libtorrent-v2") == "v2"
    assert set(kinds.values()) == {"v1"}
    assert corpus["libtorrent-hybrid"].pad_files > 0
    assert corpus["empty-last"].files[-1][1] == 0
    assert corpus["many-pieces"].pieces >= 4096
    assert corpus["many-pieces"].files[0][1] >= 16 * MIB
    singles = [e.id for e in corpus if e.single_file]
    assert len(singles) == 6, singles
