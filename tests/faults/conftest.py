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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The whole fault suite runs with `make test-all` (marker ``slow``).

    Several of these tests flaked under CPU load in clean-clone runs, and one
    (a web seed sending wrong bytes beside a good peer) once stalled at 99 %:
    until they are steady, they stay out of `make test`.
    """
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.slow)
