"""Read the logs of ``swarm.py --upload-log DIR``: where the origin's bytes went.

Prints, for one run's folder: the blocks the origin sent and how many of them were
repeats; with ``--slices N`` (the run gave leecher i ``--slice i/N``; ``--piece-size`` is
the torrent's, for the slices' runs of pieces), how many went to the leecher whose slice
the piece is in; per leecher, when its last piece came; and how long
pieces took to reach the slowest leecher after they first appeared anywhere (the swarm's
queueing delay)::

    python benchmarks/upload_log.py /tmp/ul --slices 6
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torrentds.swarm.order import Slice

FIRST_LEECHER_OCTET = 11  # swarm.py's leecher i is at .(11 + i)


@dataclass
class Log:
    uploads: list[tuple[float, int, str]] = field(default_factory=list)  # time, piece, peer
    blocks: set[tuple[int, int]] = field(default_factory=set)  # (piece, block) ever sent
    finished: dict[int, float] = field(default_factory=dict)  # piece -> time


def read(path: Path) -> Log:
    log = Log()
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] == "U":
            log.uploads.append((float(parts[0]), int(parts[2]), parts[4]))
            log.blocks.add((int(parts[2]), int(parts[3])))
        elif len(parts) >= 3 and parts[1] == "F":
            log.finished.setdefault(int(parts[2]), float(parts[0]))
    return log


def leecher_index(ip: str) -> int:
    return int(ip.rsplit(".", 1)[1]) - FIRST_LEECHER_OCTET


def report(
    folder: Path, slices: int | None, piece_size: int = 256 << 10, block: int = 16384
) -> list[str]:
    origin = read(folder / "seeder.log")
    leechers = {
        m.group(1): read(p)
        for p in sorted(folder.glob("leecher*.log"))
        if (m := re.search(r"-(\d+\.\d+\.\d+\.\d+)\.log$", p.name))
    }
    if not origin.uploads:
        return [f"{folder}: the origin logged no uploads"]
    t0 = min(t for t, _, _ in origin.uploads)
    pieces = {p for _, p, _ in origin.uploads}
    sent = len(origin.uploads)
    out = [
        f"origin: {sent} blocks ({sent * block / 1e6:.1f} MB) of {len(pieces)} pieces; "
        f"{(sent - len(origin.blocks)) / sent:.1%} were repeats; last block at "
        f"{max(t for t, _, _ in origin.uploads) - t0:.2f} s",
    ]
    runs = {i: Slice(i, slices).for_piece_size(piece_size) for i in range(slices)} if slices else {}

    def in_slice(piece: int, ip: str) -> bool:
        s = runs.get(leecher_index(ip))
        return s is not None and s.holds(piece)

    if slices:
        own = sum(1 for _, p, ip in origin.uploads if in_slice(p, ip))
        out.append(f"to the leecher whose slice the piece is in: {own / sent:.1%}")
    first_seen: dict[int, float] = {}
    for log in leechers.values():
        for p, t in log.finished.items():
            first_seen[p] = min(first_seen.get(p, t), t)
    for ip, log in leechers.items():
        if not log.finished:
            out.append(f"{ip}: no pieces")
            continue
        done = max(log.finished.values())
        line = f"{ip}: last piece at {done - t0:.2f} s"
        if slices:
            mine = [t for p, t in log.finished.items() if in_slice(p, ip)]
            if mine:
                line += f", its slice complete at {max(mine) - t0:.2f} s"
        delays = [t - first_seen[p] for p, t in log.finished.items() if t > done - 2.5]
        if delays:
            line += (
                f"; pieces of its last 2.5 s came {statistics.median(delays):.2f} s (median) "
                f"after they first appeared in the swarm"
            )
        out.append(line)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the --upload-log folder of one run")
    p.add_argument("--slices", type=int, help="N, when leecher i ran get --slice i/N")
    p.add_argument("--piece-size", type=int, default=256 << 10, help="bytes (256 KiB)")
    args = p.parse_args(argv)
    for line in report(args.folder, args.slices, args.piece_size):
        print(line)


if __name__ == "__main__":
    main()
