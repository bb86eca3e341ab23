"""``query-harness``: the command line (typer). ``app`` the stack commands, ``aws`` the commands
that talk to the running stack's endpoint and the contract diff. May import every part.
"""

from harness.cli.app import main

__all__ = ["main"]
