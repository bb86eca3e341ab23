"""``query-harness logs``: the stack's component logs, per component or merged by time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from harness.cli.options import StateDir, state_dir_or_found
from harness.stack import state as state_file

COMPONENTS_HELP = (
    "harness, endpoint (AWS and Lambda logs), gateway-access, zygote, up, or replica-N; "
    "default: all."
)


def register(app: typer.Typer, fail: Callable[..., typer.Exit], console: Console) -> None:
    """Add ``logs`` to the CLI."""

    def emit(name: str, line: str) -> None:
        console.print(f"[cyan]{name}[/] {line}", highlight=False, soft_wrap=True)

    @app.command()
    def logs(
        component: Annotated[str | None, typer.Argument(help=COMPONENTS_HELP)] = None,
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
        ] = False,
        lines: Annotated[
            int,
            typer.Option(
                "--lines", "-n", min=0, help="Lines from the end of each log (0: none, with -f: only new)."
            ),
        ] = 40,
        merge: Annotated[
            bool,
            typer.Option(
                "--merge", help="One stream in time order (the last N lines of all logs together)."
            ),
        ] = False,
        state_dir: StateDir = None,
    ) -> None:
        """Print the logs of the stack's components."""
        state_dir = state_dir_or_found(state_dir)
        files = state_file.log_files(state_dir)
        if component is not None:
            if component not in files:
                raise fail(
                    f"no log {component!r}; available: {', '.join(sorted(files)) or 'none'}"
                )
            files = {component: files[component]}
        if not files:
            raise fail(f"no logs under {state_dir / 'logs'}")
        if merge:
            for name, line in state_file.merged_tail(files, lines):
                emit(name, line)
        else:
            for name, path in sorted(files.items()):
                tail = path.read_text(errors="replace").splitlines()
                for line in tail[len(tail) - lines :] if lines else []:
                    emit(name, line)
        if follow:
            state_file.follow(files, emit)
