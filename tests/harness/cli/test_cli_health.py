"""`status` and `up` say the stack is ready only when a query can be served (issue 11, point 3)."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from harness.stack.state import wait_gone
from tests.harness.cli.cli_run import run


def _endpoint_process(stack_pid: int) -> psutil.Process:
    (endpoint,) = (
        child
        for child in psutil.Process(stack_pid).children(recursive=True)
        if "harness.aws.endpoint" in " ".join(child.cmdline())
    )
    return endpoint


def test_cli_status_with_endpoint_killed_exits_1_naming_it(tmp_path: Path) -> None:
    up = run("up", "--detach", "--edge-port", "0", "--gateway-port", "0", state_dir=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        healthy = run("status", state_dir=tmp_path)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "read path" in healthy.stdout and "DOWN" not in healthy.stdout
        assert "mapping → stream-processor: Enabled" in healthy.stdout

        state = json.loads((tmp_path / "state.json").read_text())
        endpoint = _endpoint_process(state["pid"])
        endpoint.kill()
        assert not wait_gone([endpoint.pid], 15)  # the stack does not reap it: a zombie is gone
        broken = run("status", state_dir=tmp_path)
        assert broken.returncode == 1, broken.stdout
        lines = broken.stdout.splitlines()
        assert any(line.startswith("DOWN AWS endpoint") for line in lines), broken.stdout
        assert any(line.startswith("DOWN read path") for line in lines), broken.stdout
        # liveness stays what the ALB needs: the replicas themselves still answer
        assert any(line.startswith("ok   gateway /health") for line in lines), broken.stdout

        as_json = run("status", "--json", state_dir=tmp_path)
        assert as_json.returncode == 1
        health = {c["component"]: c["ok"] for c in json.loads(as_json.stdout)["health"]}
        assert health["AWS endpoint"] is False
    finally:
        run("down", state_dir=tmp_path)


def test_cli_up_with_no_replicas_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = run("up", "--replicas", "0", "--edge-port", "0", "--gateway-port", "0", state_dir=tmp_path)
    assert result.returncode == 2
    assert "--replicas" in result.stderr and "Try it" not in result.stdout
    assert not (tmp_path / "logs").exists()


def test_cli_up_with_out_of_range_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = run("up", "--detach", "--edge-port", "0", "--gateway-port", "99999", state_dir=tmp_path)
    assert result.returncode == 2
    assert "--gateway-port" in result.stderr
    assert not (tmp_path / "logs").exists()
