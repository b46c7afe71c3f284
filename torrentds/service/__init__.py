"""What every front end calls (the CLI, the sidecar, tests): one module per job.

``create`` (dataset folder -> shards, manifest, .torrent), ``verify`` (a folder
against its manifest and torrent, and what a torrent says), ``fetch`` (get and
seed on a libtorrent session). Inputs and outputs are plain dataclasses that
serialise to JSON; nothing here prints. Long work reports through a ``Reporter``.
"""
