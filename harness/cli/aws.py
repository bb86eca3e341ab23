"""CLI commands that talk to the running stack's AWS endpoint, and the contract diff."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from harness.cli.hints import aws_environment, command_path
from harness.cli.options import StateDir, state_dir_or_found
from harness.stack import state as state_file
from harness.stack.project import default_project_dir

# boto3 and the stack's modules load only when a command needs them: `up --detach`, `down` and
# `status` start faster without them.
ROOT = default_project_dir()

EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="AWS endpoint (default: the running stack's).")
]


def register(
    app: typer.Typer, contract_app: typer.Typer, fail: Callable[..., typer.Exit], console: Console
) -> None:
    """Add seed, invoke, put-command and contract diff to the CLI."""

    def endpoint(state_dir: Path | None, endpoint_url: str | None) -> tuple[str, str]:
        if endpoint_url:
            return endpoint_url, "ap-southeast-1"
        state = state_file.read(state_dir_or_found(state_dir))
        if state is None or not state_file.alive(state):
            raise fail(
                f"no stack is up (start one with '{command_path()} up --detach', "
                "or pass --endpoint-url)"
            )
        return str(state["edge_url"]), str(state.get("region", "ap-southeast-1"))

    def parse_json(text: str, what: str) -> Any:
        source = Path(text)
        if not text.lstrip().startswith(("{", "[")) and source.is_file():
            text = source.read_text(encoding="utf-8")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(f"{what} is not valid JSON (nor a readable file): {exc}") from None

    @app.command("env")
    def env_command(
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Print the AWS tools' environment for the stack: eval "$(query-harness env)"."""
        url, region = endpoint(state_dir, endpoint_url)
        for key, value in aws_environment(url, region).items():
            print(f"export {key}={shlex.quote(value)}")

    @app.command("seed")
    def seed_command(
        state_dir: StateDir = None, endpoint_url: EndpointUrl = None
    ) -> None:
        """Write the seed command records again and wait until they reach the read side."""
        from botocore.exceptions import BotoCoreError, ClientError

        from harness.stack.commands import SyncTimeout, seed
        from harness.stack.provision import aws_client

        url, region = endpoint(state_dir, endpoint_url)
        try:
            count = seed(aws_client("dynamodb", url, region))
        except (ClientError, BotoCoreError, SyncTimeout) as exc:
            raise fail(str(exc)) from None
        console.print(f"seeded {count} command records; all reached the read side")

    @app.command("invoke")
    def invoke(
        function: Annotated[str, typer.Argument(help="Function name, e.g. query-lambda.")],
        payload: Annotated[str, typer.Argument(help="JSON payload, or a file holding it.")] = "{}",
        tail: Annotated[
            bool, typer.Option("--tail", help="Print the end of the invocation's log.")
        ] = False,
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Invoke a Lambda function (RequestResponse) and print its result."""
        from botocore.exceptions import BotoCoreError, ClientError

        from harness.stack.provision import aws_client

        body = parse_json(payload, "PAYLOAD")
        url, region = endpoint(state_dir, endpoint_url)
        try:
            answer = aws_client("lambda", url, region).invoke(
                FunctionName=function,
                Payload=json.dumps(body).encode(),
                LogType="Tail" if tail else "None",
            )
        except (ClientError, BotoCoreError) as exc:
            raise fail(str(exc)) from None
        if tail and answer.get("LogResult"):
            console.print(
                base64.b64decode(answer["LogResult"]).decode(errors="replace"), highlight=False
            )
        result = answer["Payload"].read().decode(errors="replace")
        try:
            console.print_json(result)
        except json.JSONDecodeError:
            console.print(result, highlight=False)
        if answer.get("FunctionError"):
            raise fail(f"function error ({answer['FunctionError']})")

    @app.command("put-command")
    def put_command_cmd(
        record: Annotated[
            str, typer.Argument(help="A command record (or a list) as JSON, or a file.")
        ],
        wait: Annotated[
            bool, typer.Option("--wait/--no-wait", help="Wait until it reaches the read side.")
        ] = True,
        validate: Annotated[
            bool,
            typer.Option(
                "--validate/--no-validate",
                help="Check against contracts/schemas/command-record.schema.json before writing "
                "(--no-validate writes it anyway, e.g. to watch the stream processor reject it).",
            ),
        ] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the read side.")] = 10.0,
        state_dir: StateDir = None,
        endpoint_url: EndpointUrl = None,
    ) -> None:
        """Write command record(s) to command-records; by default wait until they are readable.

        A record the stream processor rejects is reported as soon as it reaches the mapping's
        on-failure queue, with the function's reason.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        from harness.stack.commands import (
            InvalidCommandRecord,
            SyncTimeout,
            put_command,
            validate_command,
            wait_for_sync,
        )
        from harness.stack.failures import FailureWatch, RecordRejected
        from harness.stack.provision import aws_client

        value = parse_json(record, "RECORD")
        records = value if isinstance(value, list) else [value]
        missing = [
            k
            for r in records
            for k in ("transaction_id", "created_at", "user_id")
            if not isinstance(r, dict) or k not in r
        ]
        if missing:
            raise fail(
                f"a command record needs transaction_id, created_at and user_id (missing: {', '.join(missing)})"
            )
        for index, item in enumerate(records, start=1):
            try:
                if validate:
                    validate_command(item)
            except InvalidCommandRecord as exc:
                where = f"record {index}: " if len(records) > 1 else ""
                raise fail(f"{where}{exc} (nothing was written)") from None
        url, region = endpoint(state_dir, endpoint_url)
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = aws_client(service, url, region)
            return clients[service]

        dynamodb = client("dynamodb")
        watch = FailureWatch(client)
        try:
            for item in records:
                put_command(dynamodb, item)
                if wait:
                    synced = wait_for_sync(
                        dynamodb,
                        item["user_id"],
                        int(item["created_at"]),
                        expect={"status": item.get("status")} if "status" in item else None,
                        timeout_s=timeout,
                        transaction_id=item["transaction_id"],
                        watch=watch,
                        source_key={
                            "transaction_id": item["transaction_id"],
                            "created_at": item["created_at"],
                        },
                    )
                    console.print_json(
                        json.dumps({k: v for k, v in synced.items() if k != "source_sequence"})
                    )
        except (ClientError, BotoCoreError, SyncTimeout, RecordRejected) as exc:
            raise fail(str(exc)) from None
        console.print(f"wrote {len(records)} command record(s)")

    @contract_app.command("diff")
    def contract_diff(
        old: Annotated[
            Path, typer.Argument(help="Old OpenAPI document, e.g. contracts/openapi-v2.yaml.")
        ],
        new: Annotated[
            Path, typer.Argument(help="New OpenAPI document, e.g. contracts/openapi.yaml.")
        ],
        declared: Annotated[Path, typer.Option(help="Declared changes, each with a reason.")] = ROOT
        / "contracts"
        / "declared-changes.yaml",
        strict: Annotated[
            bool,
            typer.Option(
                "--strict", help="Exit 1 on an undeclared breaking change or a stale declaration."
            ),
        ] = False,
    ) -> None:
        """Report the changes from OLD to NEW: breaking, declared and non-breaking."""
        # here, not at the top: `up` and `--help` need not load YAML and the differ
        from harness.contracts.diff import diff, load_declarations, load_document  # noqa: PLC0415

        try:
            report = diff(load_document(old), load_document(new), load_declarations(declared))
        except (OSError, ValueError) as exc:
            raise fail(str(exc), 2) from None
        console.print(f"{old} -> {new}", highlight=False)
        for line in report.lines():
            style = "bold red" if line.startswith(("BREAKING", "STALE")) else None
            console.print(line, style=style, highlight=False, soft_wrap=True)
        if strict and not report.ok_strict:
            raise typer.Exit(1)


__all__ = ["register"]
