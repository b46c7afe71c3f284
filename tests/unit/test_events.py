"""The README's table of JSON events says what the event dataclasses send."""

from __future__ import annotations

import json
import re
from pathlib import Path

from torrentds.errors import StorageError
from torrentds.swarm import events

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> dict[str, set[str]]:
    """``event kind -> fields`` from the table under ``| event | fields |``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "| event | fields |")
    table: dict[str, set[str]] = {}
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        kind_cell, fields_cell = line.strip().strip("|").split("|", 1)
        kind = re.findall(r"`(\w+)`", kind_cell)[0]
        table[kind] = set(re.findall(r"`(\w+)`", fields_cell))
    return table


def test_readme_lists_every_event_with_its_fields() -> None:
    table = _readme_table()
    assert set(table) == {kind.kind for kind in events.EVENTS}
    for kind in events.EVENTS:
        assert table[kind.kind] == set(events.json_fields(kind)), kind.kind


def test_as_json_is_the_table_shape() -> None:
    result = events.JobResult("ab" * 20, "ds", "/d", 10, 5, 0.5, 1.0, 2, 2)
    samples: list[events.JobEvent] = [
        events.Started("ab" * 20, "ds", 6881),
        events.Progress("downloading", 1, 2, 0.5, 3, 4, 1, 0, 2, None, 1, 0),
        events.Progress("seeding", 2, 2, 1.0, 0, 4, 1, 2, 2, None, 2, 9, seeding_left=30.0),
        events.Done(result),
        events.Failed(StorageError("/d/x.tar", "No space left on device")),
    ]
    docs = [events.as_json(e) for e in samples]
    assert [d["event"] for d in docs] == ["started", "progress", "progress", "done", "error"]
    assert "seeding_left" not in docs[1] and docs[2]["seeding_left"] == 30.0
    assert docs[3]["shards_ready"] == 2 and docs[3]["warnings"] == []
    assert docs[4] == {"event": "error", "message": "/d/x.tar: No space left on device"}
    for doc, event in zip(docs, samples, strict=True):
        assert set(doc) - {"event"} <= set(events.json_fields(type(event)))
        json.dumps(doc)  # every value is plain JSON
