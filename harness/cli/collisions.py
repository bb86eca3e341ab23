"""``query-harness collisions``: the read-key collisions the stream processor reported."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.aws import EndpointUrl
from harness.cli.options import StateDir, state_dir_or_found
from harness.stack import state as state_file


def register(app: typer.Typer, fail: Callable[[str], typer.Exit], console: Console) -> None:
    """Add the collisions command to the CLI."""

    @app.command("collisions")
    def collisions_cmd(
        since: Annotated[
            float, typer.Option(min=0, help="Look back this many minutes (0: everything).")
        ] = 60.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Read-key collisions (two transactions of one user in one millisecond).

        Reads the stream processor's log group (collision lines, the ReadKeyCollisions metric) and
        peeks at stream-processor-dlq (messages stay there). See
        docs/decisions/0001-read-key-collisions.md.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        from harness.readside import read_collisions
        from harness.stack.provision import aws_client

        if endpoint_url:
            url, region = endpoint_url, "ap-southeast-1"
        else:
            state = state_file.read(state_dir_or_found(state_dir))
            if state is None or not state_file.alive(state):
                raise fail(
                    "no stack is up (start one with 'query-harness up --detach',"
                    " or pass --endpoint-url)"
                )
            url, region = str(state["edge_url"]), str(state.get("region", "ap-southeast-1"))
        since_ms = int((time.time() - since * 60) * 1000) if since else 0
        try:
            report = read_collisions(
                aws_client("logs", url, region), aws_client("sqs", url, region), since_ms=since_ms
            )
        except (ClientError, BotoCoreError) as exc:
            raise fail(f"cannot read the stream processor's logs or queue: {exc}") from None
        if as_json:
            console.print_json(json.dumps(report.to_json()))
            return
        if report.lines:
            table = Table("time (UTC)", "event", "user_id", "created_at", "not applied",
                          "key held by", "sequence", "in DLQ")
            for line in report.lines:
                table.add_row(
                    time.strftime("%H:%M:%S", time.gmtime(line.timestamp_ms / 1000)),
                    line.event_name, line.user_id, str(line.created_at),
                    line.transaction_id if line.reported_failed else f"({line.transaction_id})",
                    line.holder_transaction_id, line.sequence_number,
                    "-" if not line.reported_failed else "yes" if line.in_dlq else "not yet",
                )
            console.print(table)
        window = f"in the last {since:g} min" if since else "in the log group"
        console.print(
            f"{len(report.lines)} collision line(s) {window}; "
            f"{len(report.transactions)} transaction(s) with an image not applied; "
            f"ReadKeyCollisions sum {report.metric_sum:g} over {report.metric_datapoints} "
            f"datapoint(s); {len(report.dlq_ranges)} message(s) in stream-processor-dlq",
            highlight=False,
        )
