"""The query-harness CLI as a user runs it: a real process, real ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psutil
import pytest

from harness.stack.backends import docker_available
from tests.harness.cli.cli_run import port_free, run


def test_cli_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", state_dir=tmp_path)
    assert result.returncode == 0
    for command in (
        "up", "down", "status", "logs", "seed", "invoke", "put-command", "contract", "scale",
        "deploy", "tasks",
    ):
        assert command in result.stdout


def test_cli_up_detach_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    up = run(
        "up", "--detach", "--edge-port", "0", "--gateway-port", "0", "--time-scale", "20",
        state_dir=tmp_path,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["gateway_url"].endswith("/v1") and "curl -s -X POST" in up.stdout
    assert (
        httpx.post(
            f"{state['gateway_url']}/query/user", json={"user_id": "test_user_001"}
        ).status_code
        == 200
    )
    status = run("status", state_dir=tmp_path)
    assert status.returncode == 0
    assert "time scale 20" in status.stdout and "query-service-task:1 COMPLETED" in status.stdout
    scaled = run("scale", "3", state_dir=tmp_path)
    assert scaled.returncode == 0 and "desired count 3" in scaled.stdout, scaled.stderr
    negative = run("scale", "--", "-1", state_dir=tmp_path)
    assert negative.returncode == 1
    assert negative.stderr.strip().splitlines() == [
        "error: InvalidParameterException: The desired count must be a non-negative integer."
    ]
    tasks = run("tasks", state_dir=tmp_path)
    assert tasks.returncode == 0 and tasks.stdout.count("query-service-task:1") >= 2
    pids = [state["pid"], *(r["pid"] for r in state["replicas"])]
    children = psutil.Process(state["pid"]).children(recursive=True)
    again = run("up", "--detach", "--edge-port", "0", "--gateway-port", "0", state_dir=tmp_path)
    assert again.returncode == 1 and "already up" in again.stderr

    down = run("down", state_dir=tmp_path)
    assert down.returncode == 0 and "stack stopped" in down.stdout
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        for pid in pids + [c.pid for c in children]
    )
    for url in (
        state["edge_url"],
        state["gateway_url"],
        state["load_balancer_url"],
        *(r["url"] for r in state["replicas"]),
    ):
        assert port_free(url), f"{url} still answers after down"
    assert not (tmp_path / "state.json").exists()
    assert run("status", state_dir=tmp_path).returncode == 1


def test_cli_stack_killed_by_sigkill_leaves_nothing_behind(tmp_path: Path) -> None:
    """No chance to tear down: the endpoint and the replica zygote see their stdin close."""
    up = run(
        "up", "--detach", "--edge-port", "0", "--gateway-port", "0", "--time-scale", "20",
        state_dir=tmp_path,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    stack = psutil.Process(state["pid"])
    everything = [stack, *stack.children(recursive=True)]
    assert len(everything) >= 5  # stack, endpoint, Lambda worker, zygote, replicas
    stack.kill()
    gone, alive = psutil.wait_procs(everything, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [
        " ".join(p.cmdline()) for p in alive
    ]
    for url in (state["edge_url"], *(r["url"] for r in state["replicas"])):
        assert port_free(url), f"{url} still answers after the stack was killed"


def test_cli_up_with_gateway_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("up", "--edge-port", "0", "--gateway-port", str(port), state_dir=tmp_path)
    assert result.returncode == 1
    assert f"port {port} (gateway) is already in use" in result.stderr


def test_cli_localstack_without_docker_is_one_clear_line(tmp_path: Path) -> None:
    if docker_available():
        pytest.skip("a Docker engine is reachable here")
    result = run("up", "--backend", "localstack", "--gateway-port", "0", state_dir=tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no Docker engine" in lines[0], result.stderr


def test_cli_invoke_without_stack_is_a_clear_error(tmp_path: Path) -> None:
    result = run("invoke", "query-lambda", '{"query_type": "user", "id": "u"}', state_dir=tmp_path)
    assert result.returncode == 1 and "no stack is up" in result.stderr


def test_cli_put_command_rejects_invalid_json(tmp_path: Path) -> None:
    result = run("put-command", "{not json", state_dir=tmp_path)
    assert result.returncode == 1 and "not valid JSON" in result.stderr


def test_cli_contract_diff_strict_passes_on_v2_to_v3(tmp_path: Path) -> None:
    result = run(
        "contract",
        "diff",
        "contracts/openapi-v2.yaml",
        "contracts/openapi.yaml",
        "--strict",
        state_dir=tmp_path,
    )
    assert result.returncode == 0, result.stdout
    assert "path renamed /query/failure -> /query/fail" in result.stdout


def test_cli_contract_diff_strict_fails_on_undeclared_break(tmp_path: Path) -> None:
    import yaml

    broken = yaml.safe_load(Path("contracts/openapi.yaml").read_text())
    del broken["paths"]["/query/marketing"]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    result = run(
        "contract",
        "diff",
        "contracts/openapi-v2.yaml",
        str(tmp_path / "broken.yaml"),
        "--strict",
        state_dir=tmp_path,
    )
    assert result.returncode == 1
    assert "BREAKING  path removed /query/marketing" in result.stdout
