"""``query-harness``: bring the V3 stack up, show where everything is, tear it down.

The typer app and its own commands (``up``, ``down``, ``status``); running the stack is
``foreground.py`` / ``detach.py``, printing is ``output.py``, and the other commands register
from their own modules at the end."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from harness.cli.detach import run_detached
from harness.cli.foreground import run_foreground
from harness.cli.hints import command_path
from harness.cli.options import StateDir, state_dir_or_found
from harness.cli.output import console, fail, print_summary
from harness.stack import health
from harness.stack import state as state_file
from harness.stack.backends import BACKENDS

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
            run_detached(
                lambda on_ready: run_foreground(
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
    run_foreground(
        backend, edge_port, gateway_port, replicas, endpoint_url, seed, state_dir, time_scale
    )


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
