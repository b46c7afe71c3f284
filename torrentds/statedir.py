"""Where torrentds keeps its own files beside a dataset, and how it writes them.

Standard library only: the training side (``training/``) reads these paths too.

- ``DIR/NAME/.torrentds/``: a folder torrent's state (ready log, lock, copy of
  the .torrent); ``DIR/.torrentds/files/NAME/`` instead for a single-file
  torrent or one that ships its own ``.torrentds`` folder.
- ``DIR/.torrentds/resume/ID.resume``: libtorrent's resume data per torrent.
"""

from __future__ import annotations

import os
from pathlib import Path

from torrentds.errors import StorageError

STATE_DIR = ".torrentds"
EXTERNAL_DIR = "files"  # DIR/.torrentds/files/NAME: state kept outside DIR/NAME
RESUME_DIR = "resume"
TORRENT_COPY = "dataset.torrent"
# What a download writes under DIR besides the torrent's files.
WRITTEN_IN_DIR = (f"{STATE_DIR}/{RESUME_DIR}", f"{STATE_DIR}/{EXTERNAL_DIR}")


def resume_file(save_path: Path, infohash: str) -> Path:
    """Where a torrent's resume data is kept: ``DIR/.torrentds/resume/ID.resume``."""
    return save_path / STATE_DIR / RESUME_DIR / f"{infohash}.resume"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(path, f"cannot write: {exc.strerror or exc}") from exc


def check_inside(save_path: Path, paths: list[str]) -> None:
    """Refuse a torrent whose files would be written outside ``save_path``
    through a symlink already on disk (at DIR/NAME or any folder below it)."""
    root = os.path.realpath(save_path)
    steps = {"/".join(p.split("/")[: i + 1]) for p in paths for i in range(p.count("/") + 1)}
    for rel in sorted(steps, key=len):  # DIR/NAME first: a link there moves everything
        where = save_path / rel
        if not os.path.lexists(where):
            continue
        real = os.path.realpath(where)
        if real != root and not real.startswith(root + os.sep):
            raise StorageError(
                where, f"leads to {real}, outside {save_path}; refusing to write there"
            )


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and make sure we can write in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(folder, f"cannot create: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(folder, "folder is not writable")
