"""The benchmarks' own check that a copy arrived intact, independent of torrentds:
the origin's metadata files byte for byte, then coreutils ``sha256sum -c``."""

from __future__ import annotations

import filecmp
import subprocess
from collections.abc import Iterable
from pathlib import Path


def verify_copy(origin: Path, folder: Path) -> str | None:
    """None if ``folder`` holds the dataset in ``origin`` intact, else what is wrong."""
    if not (folder / "SHA256SUMS").is_file():
        return f"{folder}: no SHA256SUMS"
    for meta in ("SHA256SUMS", "torrentds.json"):
        if not (folder / meta).is_file() or not filecmp.cmp(
            origin / meta, folder / meta, shallow=False
        ):
            return f"{folder / meta} missing or differs from the origin's"
    done = subprocess.run(
        ["sha256sum", "--quiet", "--strict", "-c", "SHA256SUMS"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return f"{folder}: sha256sum -c failed: {(done.stdout + done.stderr).strip()[:400]}"
    return None


def verify_copies(origin: Path, folders: Iterable[Path]) -> str | None:
    """None if every folder holds the dataset in ``origin`` intact, else the first problem."""
    for folder in folders:
        problem = verify_copy(origin, folder)
        if problem is not None:
            return problem
    return None
