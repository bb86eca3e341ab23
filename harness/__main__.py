"""``python -m harness`` is the ``query-harness`` CLI."""

from harness.cli import main

main()
