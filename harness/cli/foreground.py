"""``up`` in the foreground: start the stack in this process, prove the read path with one
query, keep state.json current while it runs, and tear everything down on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.live import Live

from harness.cli import output
from harness.stack import health
from harness.stack import state as state_file
from harness.stack.backends import BackendUnavailable

__all__ = ["run_foreground"]


def _configure_logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "harness.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_foreground(
    backend: str,
    edge_port: int,
    gateway_port: int,
    replicas: int | None,
    endpoint_url: str | None,
    seed: bool,
    state_dir: Path,
    time_scale: float = 1.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the stack until Ctrl-C/SIGTERM; ``on_ready()`` once state.json says it is healthy."""
    from harness.stack.stack import Stack, StackConfig, StackError
    from harness.stack.terraform import InfraError

    _configure_logging(state_dir / "logs")
    config = StackConfig(
        backend=backend,
        edge_port=edge_port,
        gateway_port=gateway_port,
        replicas=replicas,
        endpoint_url=endpoint_url,
        seed=seed,
        state_dir=state_dir,
        time_scale=time_scale,
    )
    stack = Stack(
        config, progress=lambda message: output.console.print(f"[green]✓[/] {message}", highlight=False)
    )
    signal.signal(signal.SIGTERM, _interrupt)  # `down` sends SIGTERM: tear down as on Ctrl-C
    # One query through the gateway (a cold query-lambda) proves the read path; it runs as soon
    # as the gateway, the tasks and the functions are there, beside the seed, not after it.
    probe: list[health.Check] = []

    def probe_read_path() -> None:
        if stack.wait_queryable(timeout_s=120.0) and stack.gateway is not None:
            probe.append(health.read_path(stack.gateway.stage_url, timeout_s=30.0))

    prober = threading.Thread(target=probe_read_path, name="read-path-probe", daemon=True)
    try:
        prober.start()
        with output.spinner("bringing the stack up…"):
            stack.start()
    except (StackError, BackendUnavailable, InfraError) as exc:
        raise output.fail(str(exc)) from None
    except KeyboardInterrupt:
        output.err.print("interrupted: tearing down")
        raise typer.Exit(130) from None
    except Exception as exc:
        logging.getLogger("harness").exception("the stack failed to start")
        raise output.fail(
            f"the stack failed to start: {exc} (see {state_dir / 'logs' / 'harness.log'})"
        ) from None
    state = {"status": "healthy", **stack.state()}
    prober.join(timeout=35.0)
    ready = probe[0] if probe else health.read_path(state["gateway_url"], timeout_s=30.0)
    if not ready.ok:
        # Nothing can serve a query (no replica, the Lambda down): not ready, whatever /health says.
        stack.stop()
        raise output.fail(f"the stack came up but cannot serve: {ready.component}: {ready.detail}")
    try:
        state_file.write(state_dir, state)
        if on_ready is not None:
            on_ready()
        output.print_summary(state)
        output.console.print("\n[dim]Ctrl-C stops the stack.[/]")
        # On a terminal the replica table stays live; either way state.json follows replacements.
        live = (
            Live(output.status_table(state), console=output.console, refresh_per_second=1)
            if sys.stdout.isatty()
            else None
        )
        from harness.aws.heap import freeze_startup_heap  # noqa: PLC0415

        freeze_startup_heap()  # full collections run again while the stack idles (issue 14)
        with live if live is not None else contextlib.nullcontext():
            while True:
                time.sleep(1)
                state = {"status": "healthy", **stack.state()}
                state_file.write(state_dir, state)
                if live is not None:
                    live.update(output.status_table(state))
    except KeyboardInterrupt:
        output.console.print("stopping…")
    finally:
        stack.stop()
        state_file.remove(state_dir)
        output.console.print("stack stopped")
        # Everything is stopped and flushed: skip the interpreter's slow teardown of moto's
        # in-memory state (~1.5 s of garbage collection on exit).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
