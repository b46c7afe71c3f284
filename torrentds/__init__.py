"""torrentds: ML datasets as verified WebDataset shards over BitTorrent.

The package imports only the standard library: ``ready_shards``,
``shard_urls`` and ``shard_pattern`` serve a training process that has no
libtorrent (the CLI's modules load it when a command needs it).
"""

from torrentds.errors import TorrentdsError
from torrentds.training.consume import ready_shards, shard_pattern, shard_urls

__version__ = "0.1.0"
__all__ = ["TorrentdsError", "__version__", "ready_shards", "shard_pattern", "shard_urls"]
