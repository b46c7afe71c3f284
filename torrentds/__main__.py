"""``python -m torrentds`` runs the CLI."""

from torrentds.cli import main

main()
