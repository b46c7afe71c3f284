"""``swarm.py``'s plot: T against N for every way, with the two bounds (needs matplotlib,
the ``bench`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from swarm_report import Bound, Summary
from swarm_ways import WAY_LABELS, WAYS

MARKERS = {"torrentds": "o", "aria2c": "s", "http": "^", "webseed": "D"}


def draw(path: Path, summaries: Sequence[Summary], bound: Bound) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({s.n for s in summaries})
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for way in WAYS:
        pts = [(s.n, s.t) for s in summaries if s.way == way and s.t is not None]
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.plot(xs, ys, marker=MARKERS[way], label=WAY_LABELS[way])
    grid = [x / 10 for x in range(10, int(max(ns) * 10) + 1)]
    ax.plot(
        grid,
        [bound.t_min(x) for x in grid],
        "k--",
        label="bound T_min = max(F/u_s, N·F/(u_s+Σu_i))",
    )
    ax.plot(grid, [bound.http(x) for x in grid], "k:", label="HTTP bound N·F/u_s")
    ax.set_xlabel("leechers N")
    ax.set_ylabel("time until the last leecher is done (s)")
    ax.set_xticks(ns)
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"{bound.size / 1e6:.0f} MB to N hosts, {bound.seed_bps * 8 / 1e6:g} Mbit/s origin, "
        f"{bound.peer_bps * 8 / 1e6:g} Mbit/s per leecher"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
