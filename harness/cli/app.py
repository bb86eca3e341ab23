"""``query-harness``: bring the V3 stack up, show where everything is, tear it down."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.cli.hints import aws_lines, command_path
from harness.cli.options import StateDir, state_dir_or_found
from harness.ingress.zygote import redirect_output
from harness.stack import health
from harness.stack import state as state_file
from harness.stack.backends import BACKENDS, BackendUnavailable

# rich_markup_mode=None: click's plain help, which shows flags as flags (rich's shows "<bool>")
app = typer.Typer(
    help="Query Service V3 local harness: the whole stack with one command.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
contract_app = typer.Typer(
    help="Contract checks (OpenAPI V2 -> V3 and the declared changes).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(contract_app, name="contract")
console = Console()
err = Console(stderr=True)

def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("query-service-v3")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        console.print(f"query-harness {number} (Python {sys.version.split()[0]})", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Query Service V3 local harness: the whole stack with one command."""


Backend = Annotated[
    str, typer.Option("--backend", help=f"Where AWS comes from: {', '.join(BACKENDS)}.")
]
EdgePort = Annotated[
    int,
    typer.Option(
        "--edge-port", min=0, max=65535, help="Port of the embedded AWS endpoint (0 = any free)."
    ),
]
GatewayPort = Annotated[
    int,
    typer.Option("--gateway-port", min=0, max=65535, help="Port of the API gateway (0 = any free)."),
]
Replicas = Annotated[
    int | None,
    typer.Option(
        "--replicas",
        min=1,
        help="Service replicas, at least 1: with none the gateway can only answer 503 "
        "(default: the ECS service's desiredCount).",
    ),
]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="Use an AWS endpoint already running (e.g. LocalStack from compose/).",
    ),
]

EXAMPLES = [
    ("/query/user", {"user_id": "test_user_001"}),
    ("/query/marketing", {"marketing_id": "campaign_2024_new_year"}),
    ("/query/fail", {"transaction_id": "tx_002"}),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def curl_lines(gateway_url: str) -> list[str]:
    """Ready-to-paste curl commands for the seed's examples."""
    lines = [f"curl -s {gateway_url}/health"]
    for path, body in EXAMPLES:
        lines.append(
            f"curl -s -X POST {gateway_url}{path} -H 'content-type: application/json' "
            f"-d '{json.dumps(body, separators=(',', ':'))}'"
        )
    return lines


def print_summary(state: dict[str, Any]) -> None:
    table = Table(title="Query Service V3 — local stack", show_header=True, header_style="bold")
    table.add_column("component")
    table.add_column("where")
    table.add_column("state")
    table.add_row("AWS endpoint", state["edge_url"], state["backend"])
    table.add_row("gateway (stage)", state["gateway_url"], "up")
    table.add_row("load balancer", state["load_balancer_url"], "up")
    for replica in state["replicas"]:
        table.add_row(
            f"replica {replica['id']}", replica["url"], f"{replica['state']} (pid {replica['pid']})"
        )
    console.print(table)
    console.print(f"logs: {state['log_dir']}   up in {state['timings_s'].get('total', '?')} s")
    console.print("\n[bold]Try it:[/]")
    seeded = str(state.get("config", {}).get("seed", "True")) != "False"
    for line in curl_lines(state["gateway_url"])[: None if seeded else 1]:
        console.print(line, soft_wrap=True, highlight=False)
    if not seeded:
        console.print(f"(no seed: write records with '{command_path()} put-command')")
    console.print("\n[bold]AWS tools[/] (everything is in region " + state["region"] + "):")
    for line in aws_lines(state["edge_url"], state["region"]):
        console.print(line, soft_wrap=True, highlight=False)


def _configure_logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "harness.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def up(
    backend: Backend = "embedded",
    edge_port: EdgePort = 4566,
    gateway_port: GatewayPort = 8080,
    replicas: Replicas = None,
    endpoint_url: EndpointUrl = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Return once everything is healthy; the stack keeps running."
        ),
    ] = False,
    seed: Annotated[
        bool, typer.Option("--seed/--no-seed", help="Load the seed command records.")
    ] = True,
    state_dir: StateDir = None,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=0.001,
            help="Divide AWS periods (health checks, grace period, deregistration delay, "
            "metric periods, cooldowns) by this factor; 1 = AWS's real timing.",
        ),
    ] = 1.0,
    lambda_concurrency: Annotated[
        int | None,
        typer.Option(
            "--lambda-concurrency",
            min=1,
            envvar="HARNESS_LAMBDA_CONCURRENCY",
            help="The account's Lambda concurrency limit (default AWS's 1000, lowered to what "
            "this machine can hold).",
        ),
    ] = None,
    enforce_iam: Annotated[
        bool,
        typer.Option(
            "--enforce-iam",
            help="The embedded endpoint decides every signed request with IAM: each component's "
            "role policies from infra/, on the resource's ARN (the harness's own key is admin).",
        ),
    ] = False,
) -> None:
    """Bring the whole stack up: provision from infra/, seed, replicas, load balancer, gateway."""
    state_dir = state_dir_or_found(state_dir)
    if enforce_iam:  # the embedded endpoint (a child) reads it at start
        os.environ["HARNESS_ENFORCE_IAM"] = "1"
    if lambda_concurrency is not None:  # the embedded endpoint (a child) reads it at start
        os.environ["HARNESS_LAMBDA_CONCURRENCY"] = str(lambda_concurrency)
    if backend not in BACKENDS:
        raise fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}", 2)
    if edge_port and edge_port == gateway_port and not endpoint_url:
        raise fail(f"--edge-port and --gateway-port are both {edge_port}: give them different ports", 2)
    existing = state_file.read(state_dir)
    if existing is not None and state_file.alive(existing):
        raise fail(
            f"a stack is already up (pid {existing['pid']}, gateway {existing['gateway_url']}); "
            f"run '{command_path()} down' first"
        )
    state_file.new_run_logs(state_dir)
    if detach:
        raise typer.Exit(
            _detach(
                lambda on_ready: _run_foreground(
                    backend,
                    edge_port,
                    gateway_port,
                    replicas,
                    endpoint_url,
                    seed,
                    state_dir,
                    time_scale,
                    on_ready,
                ),
                state_dir,
            )
        )
    _run_foreground(
        backend, edge_port, gateway_port, replicas, endpoint_url, seed, state_dir, time_scale
    )


def _run_foreground(
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
        config, progress=lambda message: console.print(f"[green]✓[/] {message}", highlight=False)
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
        with _spinner("bringing the stack up…"):
            stack.start()
    except (StackError, BackendUnavailable, InfraError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print("interrupted: tearing down")
        raise typer.Exit(130) from None
    except Exception as exc:
        logging.getLogger("harness").exception("the stack failed to start")
        raise fail(
            f"the stack failed to start: {exc} (see {state_dir / 'logs' / 'harness.log'})"
        ) from None
    state = {"status": "healthy", **stack.state()}
    prober.join(timeout=35.0)
    ready = probe[0] if probe else health.read_path(state["gateway_url"], timeout_s=30.0)
    if not ready.ok:
        # Nothing can serve a query (no replica, the Lambda down): not ready, whatever /health says.
        stack.stop()
        raise fail(f"the stack came up but cannot serve: {ready.component}: {ready.detail}")
    try:
        state_file.write(state_dir, state)
        if on_ready is not None:
            on_ready()
        print_summary(state)
        console.print("\n[dim]Ctrl-C stops the stack.[/]")
        # On a terminal the replica table stays live; either way state.json follows replacements.
        live = (
            Live(status_table(state), console=console, refresh_per_second=1)
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
                    live.update(status_table(state))
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stack.stop()
        state_file.remove(state_dir)
        console.print("stack stopped")
        # Everything is stopped and flushed: skip the interpreter's slow teardown of moto's
        # in-memory state (~1.5 s of garbage collection on exit).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _spinner(message: str) -> contextlib.AbstractContextManager[object]:
    """rich's status spinner on a terminal; elsewhere (a log, a pipe) nothing: its refresh thread
    would wake 12.5 times a second through the start-up to draw nothing."""
    return console.status(message) if console.is_terminal else contextlib.nullcontext()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def status_table(state: dict[str, Any]) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("replica")
    table.add_column("url")
    table.add_column("pid")
    table.add_column("state")
    for replica in state["replicas"]:
        table.add_row(str(replica["id"]), replica["url"], str(replica["pid"]), replica["state"])
    return table


def _detach(
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
        with _spinner("bringing the stack up in the background…"):
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
                    print_summary(state)
                    console.print(f"\nStop it with: {command_path()} down", highlight=False)
                    return 0
                exited, status = os.waitpid(pid, os.WNOHANG)
                if exited:
                    tail = log_path.read_text(errors="replace").splitlines()[-15:]
                    err.print("\n".join(tail))
                    raise fail(
                        f"the stack exited with code {os.waitstatus_to_exitcode(status)} "
                        f"(full log: {log_path})"
                    )
    finally:
        os.close(ready_read)
    os.kill(pid, signal.SIGTERM)
    raise fail(f"the stack was not healthy after {timeout_s:g} s (log: {log_path})")


def _become_background_stack(
    run: Callable[[Callable[[], None]], None], log_path: Path, ready_fd: int
) -> NoReturn:
    """In the forked child: leave the terminal's session, log to ``log_path``, run, exit;
    one byte on ``ready_fd`` tells the parent that state.json says healthy."""
    global console, err
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
        console = Console(file=sys.stdout, force_terminal=False, soft_wrap=True)
        err = Console(file=sys.stderr, force_terminal=False, soft_wrap=True)
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


@app.command()
def down(
    state_dir: StateDir = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before killing.")] = 15.0,
) -> None:
    """Stop a stack started with 'up --detach' (or in another terminal)."""
    state_dir = state_dir_or_found(state_dir)
    state = state_file.read(state_dir)
    if state is None or not state_file.alive(state):
        state_file.remove(state_dir)
        console.print("no stack is up")
        return
    stopped = state_file.stop_process(int(state["pid"]), timeout)
    state_file.remove(state_dir)
    console.print("stack stopped" if stopped else "stack did not stop in time: killed")


@app.command()
def status(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Show where everything is and whether it answers."""
    state_dir = state_dir_or_found(state_dir)
    state = state_file.read(state_dir)
    if state is None or not state_file.alive(state):
        raise fail(f"no stack is up (start one with '{command_path()} up --detach')")
    checks = health.probe(state)
    if as_json:
        console.print_json(
            json.dumps({**state, "health": [check.as_dict() for check in checks]})
        )
    else:
        print_summary(state)
        cli_ecs.print_ecs(state, console)
        console.print()
        for check in checks:
            mark = "[green]ok[/]  " if check.ok else "[bold red]DOWN[/]"
            console.print(f"{mark} {check.component}: {check.detail}", highlight=False)
    if health.not_ready(checks):
        raise typer.Exit(1)


# Commands of their own modules (they talk to the endpoint, the ECS API, or read reports).
from harness.cli import aws as cli_aws  # noqa: E402
from harness.cli import collisions as cli_collisions  # noqa: E402
from harness.cli import doctor as cli_doctor  # noqa: E402
from harness.cli import ecs as cli_ecs  # noqa: E402  (scale, deploy, tasks: the ECS API)
from harness.cli import faults as cli_faults  # noqa: E402
from harness.cli import logs as cli_logs  # noqa: E402
from harness.cli import verify as cli_verify  # noqa: E402

cli_aws.register(app, contract_app, fail, console)
cli_collisions.register(app, fail, console)
cli_doctor.register(app, fail, console)
cli_ecs.register(app, fail, console)
cli_faults.register(app, fail, console)
cli_logs.register(app, fail, console)
cli_verify.register(app, fail, console)


def main() -> None:
    """Console-script entry point."""
    app()
