"""Options every command shares, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.stack.project import find_state_dir

__all__ = ["StateDir", "state_dir_or_found"]

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="HARNESS_STATE_DIR",
        help="Where state.json and logs live (default: .harness in the project root, found "
        "upwards from here as git does; outside a project, per user).",
    ),
]


def state_dir_or_found(given: Path | None) -> Path:
    """The ``--state-dir`` given, else the project's (see :func:`find_state_dir`)."""
    return given if given is not None else find_state_dir()
