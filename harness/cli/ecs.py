"""CLI conveniences over the ECS API of the running stack: scale, deploy, tasks (and status rows).

Each is what a user could do with the AWS CLI against the endpoint::

    aws ecs update-service --cluster query-service-cluster --service query-service --desired-count 3
    aws ecs register-task-definition ... && aws ecs update-service ... --task-definition FAMILY:REV
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.options import StateDir, state_dir_or_found
from harness.stack import state as state_file

__all__ = ["print_ecs", "register"]


def print_ecs(state: dict[str, Any], console: Console) -> None:
    """The ECS rows of ``status``: time scale, latest deployment, one line per task."""
    ecs = state.get("ecs")
    if not ecs:
        return
    deployment = ecs["deployment"]
    console.print(
        f"ECS service {ecs['service']} ({ecs['cluster']}): desired {ecs['desired_count']}, "
        f"deployment {deployment['id']} {deployment['task_definition']} "
        f"{deployment['rollout_state']} (running {deployment['running']}, pending "
        f"{deployment['pending']}, failed tasks {deployment['failed_tasks']}); "
        f"{ecs['time_scale_text']}",
        highlight=False,
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("task", "revision", "status", "health", "cpu %", "memory %", "url"):
        table.add_column(column)
    for task in ecs["tasks"]:
        table.add_row(
            task["id"],
            task["revision"],
            task["last_status"],
            task["health"],
            _percent(task.get("cpu_percent")),
            _percent(task.get("memory_percent")),
            task["url"] or "-",
        )
    console.print(table)


def _percent(value: float | None) -> str:
    """AWS/ECS utilisation of the task's cpu units or memory; '-' until first measured."""
    return "-" if value is None else f"{value:.1f}"


def register(app: typer.Typer, fail: Callable[[str], typer.Exit], console: Console) -> None:
    """Add scale, deploy and tasks to the CLI."""

    def ecs_client(state_dir: Path | None) -> tuple[Any, str, str]:
        state = state_file.read(state_dir_or_found(state_dir))
        if state is None or not state_file.alive(state):
            raise fail("no stack is up (start one with 'query-harness up --detach')")
        from harness.stack.provision import aws_client  # noqa: PLC0415 - boto3 loads on use

        ecs = state.get("ecs") or {}
        client = aws_client("ecs", str(state["edge_url"]), str(state.get("region")))
        return (
            client,
            str(ecs.get("cluster", "query-service-cluster")),
            str(ecs.get("service", "query-service")),
        )

    def call(action: Callable[..., Any], **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return action(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise fail(f"{error.get('Code', 'Error')}: {error.get('Message', exc)}") from None
        except BotoCoreError as exc:
            raise fail(f"the endpoint did not answer: {exc}") from None

    def watch(client: Any, cluster: str, service: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = call(client.describe_services, cluster=cluster, services=[service])
            primary = found["services"][0]["deployments"][0]
            state = primary.get("rolloutState")
            if state in ("COMPLETED", "FAILED") and len(found["services"][0]["deployments"]) == 1:
                console.print(f"deployment {primary['id']}: {state} ({primary['taskDefinition']})")
                if state == "FAILED":
                    raise typer.Exit(1)
                return
            time.sleep(0.5)
        raise fail(f"the deployment did not finish in {timeout_s:g} s (see 'query-harness tasks')")

    @app.command("scale")
    def scale(
        count: Annotated[int, typer.Argument(help="The service's new desired count.")],
        state_dir: StateDir = None,
    ) -> None:
        """Set the ECS service's desired count (ecs update-service --desired-count)."""
        client, cluster, service = ecs_client(state_dir)
        answer = call(client.update_service, cluster=cluster, service=service, desiredCount=count)
        console.print(f"{service}: desired count {answer['service']['desiredCount']}")

    @app.command("deploy")
    def deploy(
        env: Annotated[
            list[str] | None,
            typer.Option("--env", help="K=V to set in the container's environment (repeatable)."),
        ] = None,
        wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the rollout.")] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to follow the rollout.")] = 600.0,
        state_dir: StateDir = None,
    ) -> None:
        """Register a new revision of the service's task definition and roll the service to it."""
        changes: dict[str, str] = {}
        for item in env or []:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise fail(f"--env wants K=V, got {item!r}")
            changes[name] = value
        client, cluster, service = ecs_client(state_dir)
        current = call(client.describe_services, cluster=cluster, services=[service])
        arn = current["services"][0]["taskDefinition"]
        definition = call(client.describe_task_definition, taskDefinition=arn)["taskDefinition"]
        from harness.stack.control_plane import TASK_DEFINITION_KEYS  # noqa: PLC0415

        params = {k: definition[k] for k in TASK_DEFINITION_KEYS if definition.get(k)}
        container = dict(params["containerDefinitions"][0])
        environment = {e["name"]: e["value"] for e in container.get("environment", [])}
        environment.update(changes)
        container["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
        params["containerDefinitions"] = [container, *params["containerDefinitions"][1:]]
        registered = call(client.register_task_definition, **params)["taskDefinition"]
        new = f"{registered['family']}:{registered['revision']}"
        call(client.update_service, cluster=cluster, service=service, taskDefinition=new)
        console.print(f"{service}: rolling to {new}")
        if wait:
            watch(client, cluster, service, timeout)

    @app.command("tasks")
    def tasks(
        stopped: Annotated[
            bool, typer.Option("--stopped", help="List STOPPED tasks instead.")
        ] = False,
        state_dir: StateDir = None,
    ) -> None:
        """The service's tasks as ecs describe-tasks shows them."""
        client, cluster, service = ecs_client(state_dir)
        status = "STOPPED" if stopped else "RUNNING"
        arns = call(client.list_tasks, cluster=cluster, serviceName=service, desiredStatus=status)[
            "taskArns"
        ]
        described = (
            call(client.describe_tasks, cluster=cluster, tasks=arns)["tasks"] if arns else []
        )
        table = Table(show_header=True, header_style="bold")
        for column in ("task", "revision", "lastStatus", "health", "stoppedReason"):
            table.add_column(column)
        for task in described:
            table.add_row(
                task["taskArn"].rsplit("/", 1)[-1],
                task["taskDefinitionArn"].rsplit("/", 1)[-1],
                task["lastStatus"],
                task.get("healthStatus", "UNKNOWN"),
                task.get("stoppedReason", ""),
            )
        console.print(table)
