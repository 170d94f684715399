"""``python -m app.cli``: the ``tandem`` command."""

from app.cli.root import main

main()
