"""`contract diff` on bad input: one line, rc 2, never a traceback (issue 11, point 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.cli.cli_run import run

V2 = "contracts/openapi-v2.yaml"
V3 = "contracts/openapi.yaml"


def _one_line_error(result: object, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr  # type: ignore[attr-defined]
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("paths: [unclosed\n", "not YAML or JSON"),
        ("paths: 5\n", "'paths' must map each path"),
        ("\\x00\\xff binary", "not an OpenAPI document"),
    ],
)
def test_cli_contract_diff_bad_document_is_one_line_rc_2(
    tmp_path: Path, content: str, needle: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    _one_line_error(run("contract", "diff", V2, str(bad), state_dir=tmp_path), str(bad), needle)


def test_cli_contract_diff_missing_file_is_one_line_rc_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    _one_line_error(run("contract", "diff", str(missing), V3, state_dir=tmp_path), "cannot read")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("openapi: 3.1.0\npaths: {}\n", "not a declarations file"),  # another YAML file
        ("changes:\n  - rename: {from: /a}\n    reason: x\n", "not a declarations file"),
        ("changes:\n  - id: path-removed:/a\n", "'reason' is a required property"),
        ("changes: [unclosed\n", "not YAML or JSON"),
    ],
)
def test_cli_contract_diff_bad_declarations_are_one_line_rc_2(
    tmp_path: Path, content: str, needle: str
) -> None:
    declared = tmp_path / "declared.yaml"
    declared.write_text(content)
    result = run("contract", "diff", V2, V3, "--declared", str(declared), state_dir=tmp_path)
    _one_line_error(result, needle)
