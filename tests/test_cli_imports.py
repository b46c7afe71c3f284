"""What launch scripts call starts without the engine: ``torrentds --help``,
``--version``, ``wait`` and ``urls`` import neither libtorrent nor torf."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
from torrentds.cli import main
try:
    main(sys.argv[1:], prog_name="torrentds")
except SystemExit:
    pass
print(json.dumps({m: m in sys.modules for m in ("libtorrent", "torf")}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["-V"],
        ["wait", "--help"],
        ["urls", "--help"],
        ["wait", "{dir}", "--timeout", "0"],
        ["urls", "{dir}"],
    ],
)
def test_light_commands_load_no_engine(args: list[str], tmp_path: Path) -> None:
    argv = [a.replace("{dir}", str(tmp_path / "nothing")) for a in args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == {"libtorrent": False, "torf": False}, (argv, done.stderr)


def test_every_command_is_listed_and_loads() -> None:
    from torrentds.cli import COMMANDS, main

    done = subprocess.run(
        [sys.executable, "-m", "torrentds", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in done.stdout, name
        assert main.get_command(None, name) is not None  # type: ignore[arg-type]
