"""torrentds: ML datasets as verified WebDataset shards over BitTorrent."""

from torrentds.errors import TorrentdsError

__version__ = "0.1.0"
__all__ = ["TorrentdsError", "__version__"]
