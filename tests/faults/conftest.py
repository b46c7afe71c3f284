"""Fixtures of the fault tests (the network ones come from tests/netfixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import Nginx


@pytest.fixture
def slow_web(tmp_path: Path) -> Iterator[tuple[Nginx, Path]]:
    """An nginx web seed of its own, each connection capped at 1 MiB/s."""
    root = tmp_path / "www-slow"
    root.mkdir()
    server = Nginx(root, tmp_path / "nginx-slow", limit_rate="1m")
    yield server, root
    server.stop()
