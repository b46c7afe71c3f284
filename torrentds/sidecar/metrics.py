"""Prometheus metrics for ``/metrics``, read from ``Sidecar.status()`` on every
scrape (nothing is kept between scrapes)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from torrentds.sidecar.facade import Sidecar

LABELS = ["torrent", "name"]
# (status field, metric name, help, counter?) per torrent, labelled by info-hash and name.
PER_TORRENT: list[tuple[str, str, str, bool]] = [
    ("downloaded", "torrentds_downloaded_bytes", "Bytes downloaded (this run)", True),
    ("uploaded", "torrentds_uploaded_bytes", "Bytes uploaded (this run)", True),
    ("web_seed_bytes", "torrentds_web_seed_bytes", "Bytes received from web seeds", True),
    ("hash_failures", "torrentds_hash_failures", "Pieces that failed their hash check", True),
    ("seconds_seeded", "torrentds_seeding_seconds", "Seconds seeded since completion", True),
    ("peers", "torrentds_peers", "Connected peers", False),
    ("shards_ready", "torrentds_shards_ready", "Shards verified", False),
    ("shards_total", "torrentds_shards_total", "Shards wanted", False),
    ("progress", "torrentds_progress", "Fraction downloaded", False),
    ("down_rate", "torrentds_download_rate_bytes", "Bytes/s in", False),
    ("up_rate", "torrentds_upload_rate_bytes", "Bytes/s out", False),
]


class SidecarCollector(Collector):
    """The sidecar's torrents by state, and each torrent's numbers."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    def collect(self) -> Iterator[Metric]:
        families = [
            (
                key,
                (CounterMetricFamily if counter else GaugeMetricFamily)(name, text, labels=LABELS),
            )
            for key, name, text, counter in PER_TORRENT
        ]
        torrents = GaugeMetricFamily(
            "torrentds_torrents", "Torrents in this sidecar, by state", labels=["state"]
        )
        states: dict[str, int] = {}
        for item in self.sidecar.status():
            states[str(item.get("state"))] = states.get(str(item.get("state")), 0) + 1
            values = [str(item.get("infohash", "")), str(item.get("name") or "")]
            for key, family in families:
                value = item.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    family.add_metric(values, float(value))
        for state, count in sorted(states.items()):
            torrents.add_metric([state], count)
        yield torrents
        for _, family in families:
            yield family
