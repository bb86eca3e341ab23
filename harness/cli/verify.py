"""``query-harness verify``: the seed's acceptance checklist, checked with evidence, as a report."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.options import StateDir, state_dir_or_found

STYLE = {"PASS": "bold green", "FAIL": "bold red", "NOT CHECKED": "yellow"}


def register(app: typer.Typer, fail: Callable[[str, int], typer.Exit], console: Console) -> None:
    """Add ``verify`` to the CLI."""

    @app.command("verify")
    def verify(
        target: Annotated[
            str,
            typer.Option(
                "--target",
                help="'local' (a running stack from --state-dir, or one started for the run) "
                "or a deployed stage's URL https://…/v1 (read-only items only).",
            ),
        ] = "local",
        lang: Annotated[str, typer.Option("--lang", help="Report language: zh-TW or en.")] = "zh-TW",
        out: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path(
            "reports/acceptance"
        ),
        only: Annotated[
            str | None, typer.Option("--only", help="Only these items, e.g. 1,5,8.")
        ] = None,
        duration: Annotated[
            float, typer.Option("--duration", min=5, help="Seconds of the load run (item 5).")
        ] = 40.0,
        rate: Annotated[
            float, typer.Option("--rate", min=0.5, help="Requests per second of the load run.")
        ] = 20.0,
        state_dir: StateDir = None,
    ) -> None:
        """Check the ten acceptance items (驗收標準) and write index.html, acceptance.json, junit.xml."""
        from harness.verify import report, runner
        from harness.verify import target as targets
        from harness.verify.checklist import BY_ID
        from harness.verify.model import LANGUAGES, ItemResult

        if lang not in LANGUAGES:
            raise fail(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}", 2)
        try:
            ids = runner.parse_only(only)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        options = targets.Options(duration_s=duration, rate=rate, out_dir=out)
        started_at, t0 = datetime.now(UTC), time.perf_counter()
        if target != "local":
            try:
                stage = targets.remote(target)
            except targets.TargetError as exc:
                raise fail(str(exc), 2) from None
            try:
                targets.reachable(stage)
            except targets.TargetError as exc:
                raise fail(str(exc), 1) from None
        elif (found := targets.running(state_dir_or_found(state_dir))) is not None:
            console.print(f"using the running stack at {found.gateway_url}", highlight=False)
            stage = found
        else:
            try:
                with console.status("no stack is up: starting one for this run…"):
                    stage = targets.start(lambda m: None, options.root, out / "stack")
            except targets.TargetError as exc:
                raise fail(str(exc), 1) from None
            console.print(
                f"started a stack for this run at {stage.gateway_url} (logs: {stage.log_dir})",
                highlight=False,
            )

        def done(result: ItemResult) -> None:
            title = BY_ID[result.id].title
            console.print(
                f"[{STYLE[result.status.value]}]{result.status.value:>11}[/] "
                f"{result.id:>2}. {title['en']} ({result.duration_s:.1f} s): {result.summary['en']}",
                highlight=False,
                soft_wrap=True,
            )

        try:
            results = runner.run(stage, options, ids, done)
        finally:
            stage.stop()
        run = report.Run(stage.gateway_url, started_at, round(time.perf_counter() - t0, 1), results)
        paths = report.write(run, out, lang)
        table = Table(title=f"acceptance — {run.duration_s:.0f} s", header_style="bold")
        for column in ("#", "item", "status", "time"):
            table.add_column(column)
        for result in results:
            table.add_row(
                result.id,
                BY_ID[result.id].title["en"],
                f"[{STYLE[result.status.value]}]{result.status.value}[/]",
                f"{result.duration_s:.1f} s",
            )
        console.print(table)
        console.print(f"report: {paths['html']} ({paths['json'].name}, {paths['junit'].name})")
        raise typer.Exit(runner.exit_code(results))
