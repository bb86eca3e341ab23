"""``query-harness doctor``: the seed's troubleshooting list, answered read-only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from harness.cli.options import StateDir, state_dir_or_found
from harness.stack import state as state_file


def register(app: typer.Typer, fail: Callable[[str], typer.Exit], console: Console) -> None:
    """Add ``doctor`` to the CLI."""

    @app.command("doctor")
    def doctor(
        endpoint_url: Annotated[
            str | None,
            typer.Option("--endpoint-url", help="An AWS endpoint (default: the running stack's)."),
        ] = None,
        profile: Annotated[
            str | None, typer.Option("--profile", help="Ask a real AWS account with this profile.")
        ] = None,
        region: Annotated[
            str | None,
            typer.Option("--region", help="Region (default: the stack's, or the profile's)."),
        ] = None,
        since: Annotated[
            float,
            typer.Option(
                "--since", min=1, help="Minutes of logs, stopped tasks and metrics to read."
            ),
        ] = 15.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the findings as JSON.")
        ] = False,
        state_dir: StateDir = None,
    ) -> None:
        """Answer the seed's troubleshooting list (故障排除) with evidence and a next step each.

        Read-only: only Describe*, List*, Get*, Filter*, Query, Scan and BatchGet* calls are made
        (and an SQS ReceiveMessage with VisibilityTimeout=0, which leaves the message visible);
        anything else is refused before it is sent. Exits 1 when any check FAILs.
        """
        import boto3
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        from harness.doctor import render
        from harness.doctor.context import Context
        from harness.doctor.model import Finding, Status
        from harness.doctor.runner import run
        from harness.stack.infra import ROOT, load_infra
        from harness.stack.terraform import InfraError

        state = None
        if profile is not None or (region is not None and endpoint_url is None):
            try:
                session = boto3.session.Session(profile_name=profile, region_name=region)
            except ProfileNotFound as exc:
                raise fail(str(exc)) from None
            region = region or session.region_name
            if not region:
                raise fail("no region: pass --region or set one in the profile")
            target = f"AWS account (profile {profile or 'default'}, {region})"
        else:
            session = boto3.session.Session()
            if endpoint_url is None:
                state = state_file.read(state_dir_or_found(state_dir))
                if state is None or not state_file.alive(state):
                    raise fail(
                        "no stack is up (start one with 'query-harness up --detach', or pass "
                        "--endpoint-url, or --profile/--region for a real account)"
                    )
                endpoint_url = str(state["edge_url"])
                region = region or str(state.get("region", "ap-southeast-1"))
            region = region or "ap-southeast-1"
            target = endpoint_url
        try:
            infra = load_infra(ROOT, region=region)
        except InfraError as exc:
            raise fail(str(exc)) from None
        ctx = Context(infra, region, endpoint_url, session, since * 60, state)
        out = Console(stderr=True) if as_json else console
        if not as_json:
            console.print(f"doctor: {target} (read-only; last {since:g} min)", highlight=False)
        started = time.perf_counter()
        last_group: list[str] = []

        def show(found: Finding) -> None:
            changed = not last_group or last_group[-1] != found.group
            last_group.append(found.group)
            if not as_json:
                render.print_finding(out, found, group_changed=changed)

        try:
            findings = run(ctx, show)
        except BotoCoreError as exc:
            raise fail(str(exc)) from None
        seconds = time.perf_counter() - started
        if as_json:
            typer.echo(
                json.dumps(
                    render.as_json(target, ctx.window_s, findings, seconds),
                    ensure_ascii=False,
                    indent=2,
                )
            )
        else:
            render.print_summary(console, findings, seconds)
        if any(f.status == Status.FAIL for f in findings):
            raise typer.Exit(1)
