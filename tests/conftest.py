"""Shared fixtures: small generated datasets and two ways to run the CLI.

``cli`` runs the click group in-process (fast, for the happy paths);
``console`` runs the installed console script as a real subprocess, which is
what exit codes and "one line on stderr, no traceback" are about.  Every
``create`` passes ``--no-default-trackers`` so no file names an internet host.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from click.testing import CliRunner, Result
from hypothesis.configuration import set_hypothesis_home_dir

from tests.ltseed import Seeder
from torrentds.cli import main
from torrentds.dataset.demo_data import make_tiny_imagenet, png_bytes

TRACKER = "http://127.0.0.1:6969/announce"
WEB_SEED = "http://127.0.0.1:1/"
PIECE = 16 << 10
SHARD = 64 << 10
# The console script of the venv running the tests (.venv/bin/torrentds).
CONSOLE_SCRIPT = Path(sys.executable).with_name("torrentds")
SUBPROCESS_TIMEOUT = 60.0


def base_create_args(data_dir: Path, torrent: Path) -> list[str]:
    """``create`` flags every test uses: local tracker only, small shards and pieces."""
    return [
        "create",
        str(data_dir),
        "--no-default-trackers",
        "--tracker",
        TRACKER,
        "--no-check-web-seeds",
        "--shard-size",
        str(SHARD),
        "--piece-size",
        str(PIECE),
        "-o",
        str(torrent),
    ]


@dataclass(frozen=True)
class Created:
    """What ``torrentds create --json`` reported, with paths as ``Path``."""

    data_dir: Path
    dataset_dir: Path
    torrent: Path
    infohash: str
    result: dict[str, Any]

    @property
    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.dataset_dir / "torrentds.json").read_text())
        return doc


class CliRun(Protocol):
    def __call__(self, *args: str, expect: int | None = 0) -> Result: ...


class CreateRun(Protocol):
    def __call__(self, data_dir: Path, *extra: str, torrent: Path | None = None) -> Created: ...


class ConsoleRun(Protocol):
    def __call__(
        self, *args: str, cwd: Path | None = None, preexec_fn: Callable[[], None] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def pytest_configure(config: pytest.Config) -> None:
    """Keep Hypothesis's cache out of the source tree (no .hypothesis/ beside tests)."""
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"torrentds-hypothesis-{os.getuid()}")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRun:
    """Run ``torrentds ARGS`` in-process; checks the exit code unless ``expect`` is None."""
    monkeypatch.chdir(tmp_path)  # a default torrents/ folder would land here
    runner = CliRunner()

    def run(*args: str, expect: int | None = 0) -> Result:
        result = runner.invoke(main, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code} != {expect}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}"
            )
        return result

    return run


@pytest.fixture
def create(cli: CliRun, tmp_path: Path) -> CreateRun:
    """``torrentds create DATA_DIR --json`` with the base flags, then ``EXTRA`` (which win)."""

    def run(data_dir: Path, *extra: str, torrent: Path | None = None) -> Created:
        torrent = torrent or tmp_path / "torrents" / f"{data_dir.name}.torrent"
        result = cli(*base_create_args(data_dir, torrent), *extra, "--json")
        doc: dict[str, Any] = json.loads(result.stdout)
        return Created(
            data_dir=data_dir,
            dataset_dir=Path(doc["dataset_dir"]),
            torrent=Path(doc["torrent"]),
            infohash=doc["infohash"],
            result=doc,
        )

    return run


@pytest.fixture
def console(tmp_path: Path) -> ConsoleRun:
    """Run the real console script in a subprocess (bounded by a timeout)."""
    if not CONSOLE_SCRIPT.is_file():
        pytest.fail(f"{CONSOLE_SCRIPT}: console script not installed (pip install -e .)")

    def run(
        *args: str, cwd: Path | None = None, preexec_fn: Callable[[], None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONUTF8": "1", "COLUMNS": "200"}
        return subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SUBPROCESS_TIMEOUT,
            preexec_fn=preexec_fn,
            check=False,
        )

    return run


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], subject: str, code: int | None = None
) -> str:
    """A failed run printed exactly one ``torrentds: error:`` line naming ``subject``."""
    assert proc.returncode != 0, f"expected failure, got exit 0: {proc.stdout}"
    if code is not None:
        assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    line = lines[0]
    assert line.startswith("torrentds: error: "), line
    assert subject in line, f"{subject!r} not named in {line!r}"
    assert proc.stdout == "", proc.stdout
    return line


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too) -> sha256 of a file, or "dir"/"link".

    Names that are not UTF-8 come through as surrogate escapes, so they are listed too.
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                out[rel] = "link"
            elif full.is_dir():
                out[rel] = "dir"
            else:
                try:
                    out[rel] = sha256_of(full)
                except PermissionError:
                    out[rel] = "unreadable"
    return out


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_images(folder: Path, names: Sequence[str], rng: random.Random) -> dict[str, bytes]:
    """PNG noise images of a few different sizes; returns name -> bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, bytes] = {}
    for name in names:
        data = png_bytes(rng, rng.choice((8, 16, 24, 40)))
        (folder / name).write_bytes(data)
        out[name] = data
    return out


@pytest.fixture
def tiny_imagenet(tmp_path: Path) -> Path:
    """Tiny-ImageNet-200's layout: 3 classes, 6 train + 2 val each, 3 unlabelled test images."""
    root = make_tiny_imagenet(
        tmp_path / "tiny-imagenet-200",
        classes=3,
        train_per_class=6,
        val_per_class=2,
        image_size=24,
        seed=7,
    )
    write_images(root / "test" / "images", [f"test_{i}.png" for i in range(3)], random.Random(11))
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """ImageFolder: train/{cat,dog,emu}, val/{cat,emu} (val lacks a class on purpose)."""
    root = tmp_path / "pets"
    rng = random.Random(3)
    for cls, count in (("cat", 5), ("dog", 4), ("emu", 6)):
        write_images(root / "train" / cls, [f"{cls}{i:02d}.png" for i in range(count)], rng)
    for cls in ("cat", "emu"):
        write_images(root / "val" / cls, [f"v_{cls}{i}.png" for i in range(2)], rng)
    return root


def make_shard(path: Path, members: Sequence[tuple[str, bytes]], trailing: int = 0) -> bytes:
    """A plain (unpadded) tar of ``members`` plus ``trailing`` zero bytes; returns its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue() + bytes(trailing)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def shard_members(rng: random.Random, prefix: str, samples: int) -> list[tuple[str, bytes]]:
    """``samples`` WebDataset samples (``.bin`` of odd length + ``.json``)."""
    out: list[tuple[str, bytes]] = []
    for i in range(samples):
        key = f"{prefix}{i:04d}"
        out.append((f"{key}.bin", rng.randbytes(rng.randrange(1, 9000))))
        out.append((f"{key}.json", json.dumps({"i": i}).encode()))
    return out


@pytest.fixture
def adopted_tree(tmp_path: Path) -> Path:
    """Existing shards in SPLIT/SPLIT-NNNNNN.tar folders, of sizes that are not piece-aligned."""
    root = tmp_path / "shards"
    rng = random.Random(5)
    make_shard(root / "train" / "train-000000.tar", shard_members(rng, "a", 5), trailing=7)
    make_shard(root / "train" / "train-000001.tar", shard_members(rng, "b", 3), trailing=1234)
    make_shard(root / "val" / "val-000000.tar", shard_members(rng, "c", 2), trailing=333)
    return root


# Network fixtures (opentracker, nginx, a seeded dataset), shared by every test module.
from tests.netfixtures import dataset, tracker, web  # noqa: E402, F401


@pytest.fixture
def seeders() -> Iterator[list[Seeder]]:
    """Bare libtorrent seeders a test starts (``tests.ltseed``), stopped at teardown."""
    made: list[Seeder] = []
    yield made
    for s in made:
        s.stop()
