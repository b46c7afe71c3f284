"""Where a dataset may be written: no symlink may lead its files out of the allowed folders.

libtorrent writes ``DIR/NAME/...`` and torrentds its state into
``DIR/.torrentds``, following any symlink on the way. These checks run before
a torrent is added. They cannot close the race with a symlink made after
them; they stop the one that is already there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from torrentds.errors import UsageError

STATE_DIR = ".torrentds"


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """True if ``path``, with symlinks resolved, lies in one of ``roots`` (resolved too)."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(root)) for root in roots)


def check_dataset_folder(directory: Path, name: str | None, roots: Sequence[Path]) -> None:
    """Refuse a download into ``directory`` that a symlink would take out of ``roots``.

    With the torrent's ``name`` known (a .torrent), ``directory/name`` and the
    state folder must resolve inside a root, and so must every symlink already
    inside them. For a magnet the name comes with the metadata, later, so every
    symlink directly in ``directory`` is held to that instead.
    """
    if name:
        tops = [directory / name, directory / STATE_DIR]
    else:
        tops = [directory / STATE_DIR, *_links_in(directory)]
    for top in tops:
        for path in [top, *_links_under(top)]:
            if not inside(path, roots):
                shown = ", ".join(str(r) for r in roots)
                target = os.path.realpath(path)
                raise UsageError(
                    path, f"leads outside {shown} (symlink to {target}); refusing to write there"
                )


def _links_in(directory: Path) -> Iterator[Path]:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_symlink():
                    yield Path(entry.path)
    except OSError:
        return  # no folder yet: nothing in it can lead anywhere


def _links_under(top: Path) -> Iterator[Path]:
    """Symlinks inside the real folder ``top`` (not followed)."""
    if top.is_symlink() or not top.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(top):
        for entry in (*dirnames, *filenames):
            path = Path(dirpath) / entry
            if path.is_symlink():
                yield path
