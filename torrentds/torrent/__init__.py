"""Torrents as libtorrent sees them: metainfo, piece checks and the session engine."""
