"""What a job reports: its ``status`` row, its ``progress`` event, its result."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from torrentds.swarm import events as ev

if TYPE_CHECKING:
    from torrentds.swarm.job import Job


def status_row(job: Job) -> dict[str, Any]:
    """What ``status`` shows for this torrent (plain, JSON-ready)."""
    st = job.ref.status()
    now = time.monotonic()
    wanted = job.book.wanted(job.opts.ordering)
    return {
        "name": job.name,
        "infohash": job.ref.infohash,
        "state": "seeding" if job.completed else st.state,
        "progress": round(st.progress, 4),
        "down_rate": st.download_rate,
        "up_rate": st.upload_rate,
        "peers": st.peers,
        "shards_ready": sum(s.ready for s in wanted),
        "shards_total": len(wanted),
        "seeding_left": job.clock.left(now),
        "seconds_seeded": job.clock.seconds(now),
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "web_seed_bytes": job.web_seed_bytes.total,
        "hash_failures": job.hash_failures,
        "dataset_dir": str(job.dataset_dir or ""),
        "peer_index": job.peer_index(),
    }


def ended_row(infohash: str, result: ev.JobResult | None, error: str | None) -> dict[str, Any]:
    """What ``status`` shows for a torrent whose job has ended (or whose state
    cannot be read: ``result`` None, ``error`` why)."""
    if result is None:
        return {"infohash": infohash, "state": "error", "error": error or ""}
    return {
        "name": result.name,
        "infohash": infohash,
        "state": "done",
        "progress": 1.0,
        "shards_ready": result.shards_ready,
        "shards_total": result.shards_total,
        "downloaded": result.downloaded,
        "uploaded": result.uploaded,
        "dataset_dir": result.dataset_dir,
    }


def progress(job: Job) -> ev.Progress:
    st = job.ref.status()
    eta = (st.total_wanted - st.total_done) / st.download_rate if st.download_rate > 0 else None
    return ev.Progress(
        state=st.state,
        done=st.total_done,
        total=st.total_wanted,
        progress=round(st.progress, 4),
        down_rate=st.download_rate,
        up_rate=st.upload_rate,
        peers=st.peers,
        shards_ready=sum(s.ready for s in job.book.shards),
        shards_total=len(job.book.wanted(job.opts.ordering)),
        eta=round(eta, 1) if eta is not None else None,
        downloaded=st.downloaded,
        uploaded=st.uploaded,
        seeding_left=job.clock.left(time.monotonic()),
        peer_index=job.peer_index(),
    )


def result(job: Job, stopped: bool) -> ev.JobResult:
    st = job.ref.status()
    size = job.total_size or st.total_wanted or 1
    return ev.JobResult(
        infohash=job.ref.infohash,
        name=job.name,
        dataset_dir=str(job.dataset_dir or ""),
        downloaded=st.downloaded,
        uploaded=st.uploaded,
        ratio=round(st.uploaded / size, 3),
        seconds_seeded=job.clock.seconds(time.monotonic()),
        shards_ready=sum(s.ready for s in job.book.shards),
        shards_total=len(job.book.wanted(job.opts.ordering)),
        stopped=stopped,
        hash_failures=job.hash_failures,
        warnings=job.warnings,
    )
