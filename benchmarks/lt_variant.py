"""The torrentds CLI with libtorrent settings changed: for benchmark experiments only.

``benchmarks/swarm.py --lt-seed KEY=VALUE / --lt-leech KEY=VALUE / --super-seed`` runs
``python benchmarks/lt_variant.py <torrentds arguments>`` instead of ``python -m torrentds``.
This module leaves the package untouched on disk: in this process only, it merges the JSON
object in ``TDSB_LT_SETTINGS`` over ``torrentds.torrent.engine.lan_settings()`` and, with
``TDSB_SUPER_SEED=1``, sets libtorrent's super-seeding flag on every torrent it adds; with
``TDSB_NO_DEADLINES=1`` the window's pieces get no libtorrent piece deadlines; with
``TDSB_NO_WINDOW=1`` no shard gets the window's top priority either (plain rarest-first after
the manifest). ``TDSB_LEAVE_ORIGIN=IP`` (with ``get --slice``): once this leecher's
slice is in, it blocks the origin's address, unblocking it after 5 s without a new
piece. ``TDSB_UPLOAD_LOG=PATH`` (a diagnostic) appends one line per block this
process uploads, ``time U piece block peer``, and per piece it completes, ``time F piece``;
with ``TDSB_PICKER_LOG=1`` also, per call of libtorrent's piece picker, ``time P peer flags``
(``lt.picker_flags_t`` bits: how the pieces asked of that peer were chosen).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import IO

import libtorrent as lt

# The installed torrentds (editable: the working tree), or swarm.py --rev's via PYTHONPATH.
import torrentds.swarm.order
from torrentds import options
from torrentds.cli import main
from torrentds.dataset.manifest import ShardEntry
from torrentds.swarm import transfer
from torrentds.swarm.order import Ordering
from torrentds.torrent import engine

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

        def no_deadlines(
            self: engine.TorrentRef, pieces: list[int], start: int = 0, step_ms: int = 20
        ) -> None:
            return None

        engine.TorrentRef.set_deadlines = no_deadlines  # type: ignore[method-assign]
    if os.environ.get("TDSB_NO_WINDOW") == "1":
        priorities = torrentds.swarm.order.priorities

        def no_window(
            entries: Sequence[ShardEntry],
            order: Sequence[int],
            ready: Sequence[bool],
            ordering: Ordering,
            hold_others: bool = False,
        ) -> list[int]:
            plain = dataclasses.replace(ordering, window=0)
            return priorities(entries, order, ready, plain, hold_others)

        torrentds.swarm.order.priorities = no_window
    origin = os.environ.get("TDSB_LEAVE_ORIGIN")
    if origin:
        _leave_origin(origin)
    upload_log = os.environ.get("TDSB_UPLOAD_LOG")
    if upload_log:
        _log_uploads(upload_log)


def _leave_origin(origin: str) -> None:
    """Once this leecher's slice (``get --slice``) is in, block the origin's address
    (ip_filter), so the rest comes from the other leechers; unblock it after 5 s without
    a new piece."""
    tick = transfer.Job.tick

    def ticking(self: transfer.Job, now: float) -> bool:
        ses = self.engine._ses
        slice_ = self.opts.ordering.slice
        if self.shards and not self.completed and slice_ is not None:
            blocked = getattr(self, "_blocked_at", None)
            unit = slice_.for_piece_size(self.ref.piece_size())
            mine = [p for p in range(self.ref.num_pieces()) if unit.holds(p)]
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

    def with_uploads(opts: options.SessionOptions) -> Settings:
        out = settings(opts)
        out["alert_mask"] = int(out["alert_mask"]) | int(lt.alert_category.upload)
        if os.environ.get("TDSB_PICKER_LOG"):
            out["alert_mask"] = int(out["alert_mask"]) | int(lt.alert_category.picker_log)
        return out

    engine._session_settings = with_uploads
    translate = engine._translate

    def logging_translate(
        a: lt.alert, id_of: Callable[[lt.torrent_handle], str]
    ) -> engine.Event | None:
        if isinstance(a, lt.block_uploaded_alert):
            fh.write(f"{time.time():.3f} U {a.piece_index} {a.block_index} {a.ip[0]}\n")
        elif isinstance(a, lt.picker_log_alert):
            fh.write(f"{time.time():.3f} P {a.ip[0]} {int(a.picker_flags)}\n")
        elif isinstance(a, lt.piece_finished_alert):
            fh.write(f"{time.time():.3f} F {a.piece_index}\n")
        return translate(a, id_of)

    engine._translate = logging_translate


if __name__ == "__main__":
    _patch()
    main()
