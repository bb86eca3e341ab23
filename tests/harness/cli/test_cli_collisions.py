"""`query-harness collisions` without a stack, and its help (the real path: tests/e2e)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app


def test_cli_collisions_without_stack_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["collisions", "--state-dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "no stack is up" in result.output
    assert "Traceback" not in result.output


def test_cli_collisions_help_names_where_it_reads() -> None:
    result = CliRunner().invoke(app, ["collisions", "--help"])

    assert result.exit_code == 0
    assert "stream-processor-dlq" in result.output


def test_cli_collisions_negative_window_is_rejected() -> None:
    result = CliRunner().invoke(app, ["collisions", "--since", "-5"])

    assert result.exit_code == 2
