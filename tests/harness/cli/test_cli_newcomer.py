"""What a newcomer pastes: the AWS tools' environment, state from a subdirectory, per-run logs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness.cli.cli_run import run

Stack = tuple[Path, dict[str, Any]]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "HARNESS_", "BOTO"))
    }
    return {**env, "COLUMNS": "200", "TERM": "dumb", **extra}


def test_cli_env_lines_work_in_a_fresh_shell(detached_stack: Stack, tmp_path: Path) -> None:
    """`eval "$(query-harness env)"` then any SDK call lists the stack's tables."""
    state_dir, _ = detached_stack
    script = (
        f'eval "$({sys.executable} -m harness env --state-dir {state_dir})" && '
        f"{sys.executable} -c 'import boto3; print(boto3.client(\"dynamodb\").list_tables())'"
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=_clean_env(HOME=str(tmp_path)),
        timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "command-records" in result.stdout and "notification-records" in result.stdout


def test_cli_summary_names_region_and_credentials(detached_stack: Stack) -> None:
    state_dir, state = detached_stack
    result = run("status", state_dir=state_dir)
    assert "AWS_DEFAULT_REGION=ap-southeast-1" in result.stdout
    assert "AWS_ACCESS_KEY_ID=" in result.stdout
    assert f"aws sqs list-queues --endpoint-url {state['edge_url']}" in result.stdout


def test_cli_status_from_a_project_subdirectory_finds_the_stack(
    detached_stack: Stack, tmp_path: Path
) -> None:
    state_dir, _ = detached_stack
    project = tmp_path / "project"
    (project / ".harness").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    shutil.copy(state_dir / "state.json", project / ".harness" / "state.json")
    (project / "tests" / "deep").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "harness", "status"],
        capture_output=True, text=True, env=_clean_env(), timeout=60, cwd=project / "tests" / "deep",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no stack is up" not in result.stderr


def test_cli_failed_detached_up_shows_only_this_runs_log(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    old_banner = "Try it:\ncurl -s http://127.0.0.1:1/v1/health\n"
    (tmp_path / "logs" / "up.log").write_text(old_banner)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        failed = run(
            "up", "--detach", "--edge-port", "0", "--gateway-port", str(port), state_dir=tmp_path
        )
    assert failed.returncode == 1
    assert f"port {port} (gateway) is already in use" in failed.stderr
    assert "127.0.0.1:1/v1" not in failed.stdout + failed.stderr
    assert (tmp_path / "logs" / "previous" / "up.log").read_text() == old_banner


def test_cli_no_seed_up_prints_no_seed_queries_and_a_stop_line_that_works(tmp_path: Path) -> None:
    up = run("up", "--detach", "--no-seed", "--edge-port", "0", "--gateway-port", "0", state_dir=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert "curl -s -X POST" not in up.stdout and "put-command" in up.stdout
        (stop_line,) = [line for line in up.stdout.splitlines() if line.startswith("Stop it with: ")]
        command = stop_line.removeprefix("Stop it with: ")
        down = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60,
            env=_clean_env(HARNESS_STATE_DIR=str(tmp_path)),
        )
        assert down.returncode == 0 and "stack stopped" in down.stdout, command + down.stderr
    finally:
        run("down", state_dir=tmp_path)
