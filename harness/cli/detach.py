"""``up --detach``: the stack runs in a forked, session-leading child that logs to a file; the
parent returns once the child reports the stack healthy (or shows why it did not start)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from harness.cli import output
from harness.cli.hints import command_path
from harness.ingress.zygote import redirect_output
from harness.stack import state as state_file

__all__ = ["run_detached"]


def run_detached(
    run: Callable[[Callable[[], None]], None], state_dir: Path, timeout_s: float = 120.0
) -> int:
    """Run the stack in a forked, session-leading child; return once it reports healthy.

    A fork (not a new interpreter) because this process has already imported the CLI: the child
    starts the stack at once. Nothing has started a thread yet, so the fork is safe. The child
    says "healthy" through a pipe, after writing state.json: this process sleeps in ``select``
    meanwhile instead of polling the file (polling took ~0.1 CPU-s a second from the start-up).
    """
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    state_file.remove(state_dir)
    log_path = log_dir / "up.log"
    sys.stdout.flush()
    sys.stderr.flush()
    ready_read, ready_write = os.pipe()  # not inherited by the stack's own subprocesses
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        _become_background_stack(run, log_path, ready_write)
    os.close(ready_write)
    deadline = time.monotonic() + timeout_s
    try:
        with output.spinner("bringing the stack up in the background…"):
            signalled = False
            while (left := deadline - time.monotonic()) > 0:
                # ready (a byte), the child gone (EOF), or a second passed: look at the child
                if signalled:  # the pipe said its last: the child is exiting (or writing state)
                    time.sleep(min(left, 0.02))
                elif select.select([ready_read], [], [], min(left, 1.0))[0]:
                    os.read(ready_read, 1)  # "1" (healthy) or b"" (closed)
                    signalled = True
                state = state_file.read(state_dir)
                if state is not None and state.get("pid") == pid and state.get("status") == "healthy":
                    output.print_summary(state)
                    output.console.print(f"\nStop it with: {command_path()} down", highlight=False)
                    return 0
                exited, status = os.waitpid(pid, os.WNOHANG)
                if exited:
                    tail = log_path.read_text(errors="replace").splitlines()[-15:]
                    output.err.print("\n".join(tail))
                    raise output.fail(
                        f"the stack exited with code {os.waitstatus_to_exitcode(status)} "
                        f"(full log: {log_path})"
                    )
    finally:
        os.close(ready_read)
    os.kill(pid, signal.SIGTERM)
    raise output.fail(f"the stack was not healthy after {timeout_s:g} s (log: {log_path})")


def _become_background_stack(
    run: Callable[[Callable[[], None]], None], log_path: Path, ready_fd: int
) -> NoReturn:
    """In the forked child: leave the terminal's session, log to ``log_path``, run, exit;
    one byte on ``ready_fd`` tells the parent that state.json says healthy."""
    code = 1

    def ready() -> None:
        with contextlib.suppress(OSError):  # the parent may be gone (Ctrl-C): the stack runs on
            os.write(ready_fd, b"1")
        with contextlib.suppress(OSError):
            os.close(ready_fd)

    try:
        os.setsid()  # Ctrl-C in the terminal that ran `up --detach` no longer reaches the stack
        redirect_output(log_path)
        os.environ["TERM"] = "dumb"
        output.console = Console(file=sys.stdout, force_terminal=False, soft_wrap=True)
        output.err = Console(file=sys.stderr, force_terminal=False, soft_wrap=True)
        run(ready)  # returns only through os._exit or an exception
        code = 0
    except typer.Exit as exc:
        code = exc.exit_code
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
