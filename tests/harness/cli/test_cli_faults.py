"""``query-harness fault ...`` as a user runs it, against the session's embedded endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.aws.endpoint import Endpoint


def fault(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_STATE_DIR": str(state_dir), "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "harness", "fault", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def table(keyed_table: str) -> str:
    return keyed_table


def test_cli_fault_add_list_clear(endpoint: Endpoint, table: str, tmp_path: Path) -> None:
    url = ("--endpoint-url", endpoint.url)
    added = fault("add", "throttle", "--table", table, "--operation", "PutItem",
                  "--fraction", "0.5", *url, state_dir=tmp_path)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["operations"] == ["PutItem"]
    listed = fault("list", *url, state_dir=tmp_path)
    assert listed.returncode == 0 and "throttle" in listed.stdout and table in listed.stdout
    cleared = fault("clear", *url, state_dir=tmp_path)
    assert cleared.returncode == 0 and "cleared 1 fault" in cleared.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("fail", "--function", "no-such-fn"), "unknown function 'no-such-fn'"),
        (("throttle", "--table", "no-such-table"), "unknown table 'no-such-table'"),
        (("fail", "--function", "f", "--fraction", "1.5"), "fraction must be from 0 to 1"),
        (("fail", "--function", "f", "--key", "transaction_id"), "malformed key pattern"),
    ],
)
def test_cli_fault_add_bad_spec_is_one_line(
    endpoint: Endpoint, tmp_path: Path, args: tuple[str, ...], reason: str
) -> None:
    result = fault("add", *args, "--endpoint-url", endpoint.url, state_dir=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and reason in lines[0], result.stderr


def test_cli_fault_without_stack_is_a_clear_error(tmp_path: Path) -> None:
    for args in (("list",), ("kill-replica",)):
        result = fault(*args, state_dir=tmp_path)
        assert result.returncode == 1 and "no stack is up" in result.stderr
