"""`up --endpoint-url` checks what answers there first (issue 11, point 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack.backends import BackendUnavailable, identify_endpoint
from tests.harness.cli.cli_run import run


@pytest.fixture
def own_endpoint() -> Iterator[str]:
    """`python -m harness.endpoint` on a free port, as the README shows it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.endpoint", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_identify_endpoint_unreachable_raises_saying_so() -> None:
    with pytest.raises(BackendUnavailable, match="nothing answers at --endpoint-url"):
        identify_endpoint("http://127.0.0.1:1")


def test_cli_up_unreachable_endpoint_is_one_line_not_lambda_package(tmp_path: Path) -> None:
    result = run("up", "--endpoint-url", "http://127.0.0.1:1", "--gateway-port", "0", state_dir=tmp_path)
    assert result.returncode == 1
    assert "nothing answers at --endpoint-url http://127.0.0.1:1" in result.stderr
    assert "lambda-package" not in result.stderr and "starting the" not in result.stdout


def test_cli_up_on_the_projects_own_endpoint_works(own_endpoint: str, tmp_path: Path) -> None:
    assert identify_endpoint(own_endpoint) == "harness"
    up = run(
        "up", "--detach", "--endpoint-url", own_endpoint, "--gateway-port", "0", state_dir=tmp_path
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["edge_url"] == own_endpoint
        log = (tmp_path / "logs" / "up.log").read_text()
        assert "the AWS endpoint answers: harness" in log and "starting the" not in log
    finally:
        run("down", state_dir=tmp_path)
