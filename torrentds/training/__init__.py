"""The training side: the ready log the downloader writes, the readers that tail it.

Standard library only: a training process imports this without libtorrent.
"""
