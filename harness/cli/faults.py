"""``query-harness fault add|list|remove|clear|kill-replica``: faults on the running stack."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.options import StateDir, state_dir_or_found
from harness.faults.spec import KINDS
from harness.stack import state as state_file

if TYPE_CHECKING:  # imported where used: httpx costs ~0.2 CPU-s, which `up` and `--help` skip
    from harness.faults.client import FaultsClient

EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="AWS endpoint (default: the running stack's).")
]


def register(app: typer.Typer, fail: Callable[[str], typer.Exit], console: Console) -> None:
    """Add the ``fault`` command group to the CLI."""
    fault_app = typer.Typer(
        help="Inject faults into the running stack (embedded backend): failing or killed "
        "Lambda workers, timeouts, DynamoDB throttling, poller restarts, replica kills.",
        no_args_is_help=True,
    )
    app.add_typer(fault_app, name="fault")

    def running_state(state_dir: Path | None) -> dict[str, Any]:
        state = state_file.read(state_dir_or_found(state_dir))
        if state is None or not state_file.alive(state):
            raise fail("no stack is up (start one with 'query-harness up --detach')")
        return state

    def client(state_dir: Path | None, endpoint_url: str | None) -> FaultsClient:
        from harness.faults.client import FaultsClient  # noqa: PLC0415 - see the top

        url = endpoint_url or str(running_state(state_dir)["edge_url"])
        return FaultsClient(url)

    @contextlib.contextmanager
    def refused() -> Iterator[None]:
        """The control API's refusal as the CLI's one-line error."""
        from harness.faults.client import FaultApiError  # noqa: PLC0415 - see the top

        try:
            yield
        except FaultApiError as exc:
            raise fail(str(exc)) from None

    @fault_app.command("add")
    def add(
        kind: Annotated[str, typer.Argument(help=" | ".join(KINDS))],
        function: Annotated[str | None, typer.Option(help="Function scope.")] = None,
        table: Annotated[str | None, typer.Option(help="Table scope (throttle, watch).")] = None,
        fraction: Annotated[
            float | None, typer.Option(help="Share of invocations/requests, 0-1.")
        ] = None,
        mode: Annotated[str | None, typer.Option(help="fail: unhandled | partial.")] = None,
        key: Annotated[
            list[str] | None,
            typer.Option(help="fail: attribute=glob (poison records); repeatable."),
        ] = None,
        operation: Annotated[
            list[str] | None,
            typer.Option(help="throttle: DynamoDB action, e.g. PutItem; repeatable."),
        ] = None,
        error: Annotated[
            str | None,
            typer.Option(
                help="throttle: ProvisionedThroughputExceededException | ThrottlingException."
            ),
        ] = None,
        delay_ms: Annotated[
            int | None, typer.Option(help="delay / kill-worker: milliseconds.")
        ] = None,
        count: Annotated[int | None, typer.Option(help="Fire at most this many times.")] = None,
        seed: Annotated[int | None, typer.Option(help="Random seed (repeatable runs).")] = None,
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Add a fault; prints it with its id (kinds: see the KIND argument)."""
        spec: dict[str, Any] = {"kind": kind, "function": function, "table": table,
                                "fraction": fraction, "mode": mode, "keys": key,
                                "operations": operation, "error": error, "delay_ms": delay_ms,
                                "count": count, "seed": seed}  # fmt: skip
        spec = {name: value for name, value in spec.items() if value is not None}
        with client(state_dir, endpoint_url) as faults:
            with refused():
                fault = faults.add(spec)
        console.print_json(json.dumps(fault))

    @fault_app.command("list")
    def list_faults(
        as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """List the live faults with how often each was in scope and fired."""
        with client(state_dir, endpoint_url) as faults:
            with refused():
                listed = faults.list()
        if as_json:
            console.print_json(json.dumps(listed))
            return
        table = Table("id", "kind", "scope", "settings", "seen", "fired")
        for fault in listed["faults"]:
            scope = fault.get("function") or fault.get("table") or "all"
            settings = {k: v for k, v in fault.items()
                        if k not in ("id", "kind", "function", "table", "seen", "fired")
                        and v not in (None, [], "")}  # fmt: skip
            table.add_row(fault["id"], fault["kind"], scope, json.dumps(settings),
                          str(fault["seen"]), str(fault["fired"]))  # fmt: skip
        console.print(table)
        for function, stats in listed["deliveries"].items():
            console.print(f"{function}: {json.dumps(stats)}", highlight=False)

    @fault_app.command("remove")
    def remove(
        fault_id: Annotated[str, typer.Argument(help="The fault's id (from 'fault list').")],
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Remove one fault; prints its final counts."""
        with client(state_dir, endpoint_url) as faults:
            with refused():
                console.print_json(json.dumps(faults.remove(fault_id)))

    @fault_app.command("clear")
    def clear(state_dir: StateDir = None, endpoint_url: EndpointUrl = None) -> None:
        """Remove every fault."""
        with client(state_dir, endpoint_url) as faults:
            with refused():
                console.print(f"cleared {faults.clear()} fault(s)")

    @fault_app.command("kill-replica")
    def kill_replica_command(
        replica: Annotated[
            str | None, typer.Option(help="Replica id (default: the first).")
        ] = None,
        state_dir: StateDir = None,
    ) -> None:
        """SIGKILL one service replica (the stack replaces it, as ECS replaces a stopped task)."""
        from harness.faults.client import kill_replica  # noqa: PLC0415 - see the top

        with refused():
            killed = kill_replica(running_state(state_dir).get("replicas", []), replica)
        console.print(f"killed replica {killed['id']} (pid {killed['pid']}, {killed['url']})")


__all__ = ["register"]
