"""What the CLI prints: its two consoles, the one-line error exit, the stack's summary (with
ready-to-paste curl and AWS tool lines) and the live replica table.

``console`` and ``err`` are replaced in a detached stack's child (``detach.py``): read them as
attributes of this module where that child prints."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.hints import aws_lines, command_path

__all__ = [
    "EXAMPLES",
    "console",
    "curl_lines",
    "err",
    "fail",
    "print_summary",
    "spinner",
    "status_table",
]

console = Console()
err = Console(stderr=True)

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


def spinner(message: str) -> contextlib.AbstractContextManager[object]:
    """rich's status spinner on a terminal; elsewhere (a log, a pipe) nothing: its refresh thread
    would wake 12.5 times a second through the start-up to draw nothing."""
    return console.status(message) if console.is_terminal else contextlib.nullcontext()


def status_table(state: dict[str, Any]) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("replica")
    table.add_column("url")
    table.add_column("pid")
    table.add_column("state")
    for replica in state["replicas"]:
        table.add_row(str(replica["id"]), replica["url"], str(replica["pid"]), replica["state"])
    return table
