"""Network fixtures: one opentracker, one nginx and one seeded dataset per session."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.procs import TORRENTDS, Nginx, Opentracker
from torrentds.dataset.demo_data import make_tiny_imagenet


@dataclass(frozen=True)
class Dataset:
    origin: Path  # the seeder's dataset folder (NAME-wds)
    torrent: Path
    infohash: str
    name: str
    size: int


@pytest.fixture(scope="session")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opentracker]:
    t = Opentracker(tmp_path_factory.mktemp("opentracker"))
    yield t
    t.stop()


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nginx, Path]]:
    root = tmp_path_factory.mktemp("www")
    server = Nginx(root, tmp_path_factory.mktemp("nginx"))
    yield server, root
    server.stop()


def create_dataset(
    base: Path, tracker: Opentracker, *extra: str, classes: int = 6, per_class: int = 40
) -> Dataset:
    raw = make_tiny_imagenet(
        base / "tiny", classes=classes, train_per_class=per_class, val_per_class=10, image_size=64
    )
    out = subprocess.run(
        [
            *TORRENTDS,
            "create",
            str(raw),
            "--no-default-trackers",
            "--tracker",
            tracker.url,
            "--shard-size",
            "256K",
            "--piece-size",
            "64K",
            "-o",
            str(base / "tiny.torrent"),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    tracker.allow(result["infohash"])
    return Dataset(
        Path(result["dataset_dir"]),
        base / "tiny.torrent",
        result["infohash"],
        result["name"],
        result["bytes"],
    )


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory, tracker: Opentracker) -> Dataset:
    return create_dataset(tmp_path_factory.mktemp("ds"), tracker)
