"""CLI polish (issue 11, point 10): --version, flags shown as flags in help."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from tests.harness.cli.cli_run import run


def test_cli_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run("--version", state_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"query-harness {version('query-service-v3')} ")


def test_cli_help_shows_no_bool_metavar(tmp_path: Path) -> None:
    for command in (("up",), ("status",), ("logs",), ("put-command",), ("contract", "diff")):
        result = run(*command, "--help", state_dir=tmp_path)
        assert result.returncode == 0 and "<bool>" not in result.stdout, (command, result.stdout)
