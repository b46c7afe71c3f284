"""The torrentds CLI with libtorrent settings changed: for benchmark experiments only.

``benchmarks/swarm.py --lt-seed KEY=VALUE / --lt-leech KEY=VALUE / --super-seed`` runs
``python benchmarks/lt_variant.py <torrentds arguments>`` instead of ``python -m torrentds``.
This module leaves the package untouched on disk: in this process only, it merges the JSON
object in ``TDSB_LT_SETTINGS`` over ``torrentds.engine.lan_settings()`` and, with
``TDSB_SUPER_SEED=1``, sets libtorrent's super-seeding flag on every torrent it adds; with
``TDSB_NO_DEADLINES=1`` the window's pieces get no libtorrent piece deadlines; with
``TDSB_NO_WINDOW=1`` no shard gets the window's top priority either (plain rarest-first after
the manifest). ``TDSB_PIECE_COLORS=K:C`` gives the pieces with index % K == C (of those
wanted) top priority, so that K leechers with distinct C ask the origin for disjoint
slices first. ``TDSB_UPLOAD_LOG=PATH`` (a diagnostic) appends one line per block this
process uploads, ``time U piece block peer``, and per piece it completes, ``time F piece``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from typing import IO

import libtorrent as lt

# The installed torrentds (editable: the working tree), or swarm.py --rev's via PYTHONPATH.
import torrentds.order
from torrentds import engine, transfer
from torrentds.cli import main
from torrentds.manifest import ShardEntry
from torrentds.order import Ordering

Settings = dict[str, int | bool | str]


def _patch() -> None:
    overrides: Settings = json.loads(os.environ.get("TDSB_LT_SETTINGS") or "{}")
    if overrides:
        base = engine.lan_settings

        def lan_settings() -> Settings:
            return {**base(), **overrides}

        engine.lan_settings = lan_settings
    if os.environ.get("TDSB_SUPER_SEED") == "1":
        add = engine.Engine.add

        def add_super(self: engine.Engine, spec: engine.AddSpec) -> engine.TorrentRef:
            ref = add(self, spec)
            ref._h.set_flags(lt.torrent_flags.super_seeding)
            return ref

        engine.Engine.add = add_super  # type: ignore[method-assign]
    if os.environ.get("TDSB_NO_DEADLINES") == "1" or os.environ.get("TDSB_NO_WINDOW") == "1":

        def no_deadlines(self: engine.TorrentRef, pieces: list[int], step_ms: int = 20) -> None:
            return None

        engine.TorrentRef.set_deadlines = no_deadlines  # type: ignore[method-assign]
    if os.environ.get("TDSB_NO_WINDOW") == "1":
        priorities = torrentds.order.priorities

        def no_window(
            entries: Sequence[ShardEntry],
            order: Sequence[int],
            ready: Sequence[bool],
            ordering: Ordering,
            hold_others: bool = False,
        ) -> list[int]:
            plain = dataclasses.replace(ordering, window=0)
            return priorities(entries, order, ready, plain, hold_others)

        torrentds.order.priorities = no_window
    colors = os.environ.get("TDSB_PIECE_COLORS")
    if colors:
        _color_pieces(*(int(x) for x in colors.split(":")))
        origin = os.environ.get("TDSB_LEAVE_ORIGIN")
        if origin:
            _leave_origin(origin, *(int(x) for x in colors.split(":")))
    upload_log = os.environ.get("TDSB_UPLOAD_LOG")
    if upload_log:
        _log_uploads(upload_log)


def _color_pieces(k: int, color: int) -> None:
    """After every change of file priorities, lift this leecher's slice to the top."""
    apply = transfer.Job._apply_priorities

    def colored(self: transfer.Job) -> None:
        before = list(self.file_priorities)
        apply(self)
        if self.shards and (self.file_priorities != before or not getattr(self, "_colored", 0)):
            self._colored = 1  # type: ignore[attr-defined]
            prio = self.ref._h.get_piece_priorities()
            lifted = {p: 7 for p, v in enumerate(prio) if v > 0 and p % k == color}
            self.ref.set_piece_priorities(lifted)

    transfer.Job._apply_priorities = colored  # type: ignore[method-assign]


def _leave_origin(origin: str, k: int, color: int) -> None:
    """Once this leecher's slice is in, block the origin's address (ip_filter), so the
    rest comes from the other leechers; unblock it after 5 s without a new piece."""
    tick = transfer.Job.tick

    def ticking(self: transfer.Job, now: float) -> bool:
        ses = self.engine._ses
        if self.shards and not self.completed:
            blocked = getattr(self, "_blocked_at", None)
            mine = [p for p in range(self.ref.num_pieces()) if p % k == color]
            if blocked is None and all(p in self.have for p in mine):
                f = lt.ip_filter()
                f.add_rule(origin, origin, 1)
                ses.set_ip_filter(f)
                self._blocked_at = now  # type: ignore[attr-defined]
                self._blocked_have = len(self.have)  # type: ignore[attr-defined]
            elif blocked is not None and blocked > 0:
                if len(self.have) > self._blocked_have:  # type: ignore[attr-defined]
                    self._blocked_have = len(self.have)  # type: ignore[attr-defined]
                    self._blocked_at = now  # type: ignore[attr-defined]
                elif now - blocked > 5:
                    ses.set_ip_filter(lt.ip_filter())
                    self._blocked_at = -1  # type: ignore[attr-defined]
        return tick(self, now)

    transfer.Job.tick = ticking  # type: ignore[method-assign]


def _log_uploads(path: str) -> None:
    fh: IO[str] = open(path, "a", buffering=1 << 16)  # noqa: SIM115 (open for the process)
    settings = engine._session_settings

    def with_uploads(opts: engine.SessionOptions) -> Settings:
        out = settings(opts)
        out["alert_mask"] = int(out["alert_mask"]) | int(lt.alert_category.upload)
        return out

    engine._session_settings = with_uploads
    translate = engine._translate

    def logging_translate(a: lt.alert) -> engine.Event | None:
        if isinstance(a, lt.block_uploaded_alert):
            fh.write(f"{time.time():.3f} U {a.piece_index} {a.block_index} {a.ip[0]}\n")
        elif isinstance(a, lt.piece_finished_alert):
            fh.write(f"{time.time():.3f} F {a.piece_index}\n")
        return translate(a)

    engine._translate = logging_translate


if __name__ == "__main__":
    _patch()
    main()
