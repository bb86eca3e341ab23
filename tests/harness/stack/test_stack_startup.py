"""Start-up helpers of the stack: `Stack.wait_queryable` and the shared boto3 session."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.stack.stack import Stack, StackConfig


def test_stack_wait_queryable_needs_the_functions_and_the_serving_tasks(tmp_path: Path) -> None:
    stack = Stack(StackConfig(state_dir=tmp_path))
    assert not stack.wait_queryable(timeout_s=0.01)
    stack._tasks_serving.set()  # the gateway serves, every task healthy: no function yet
    assert not stack.wait_queryable(timeout_s=0.01)
    answered: list[bool] = []
    waiter = threading.Thread(target=lambda: answered.append(stack.wait_queryable(60.0)))
    waiter.start()
    stack._functions_made.set()
    waiter.join(timeout=60.0)
    assert answered == [True]


def test_a_shared_session_without_credentials_in_the_environment_has_the_test_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The chain is walked once (not once per client); the keys are those aws_client would use."""
    from harness.stack.provision import new_session

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    credentials = new_session().get_credentials()
    assert credentials is not None
    assert (credentials.access_key, credentials.secret_key) == ("test", "test")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    credentials = new_session().get_credentials()
    assert credentials is not None and credentials.access_key == "AKIDFROMENV"


def test_a_service_that_never_reaches_a_steady_state_fails_up_with_its_rollout_state() -> None:
    """Healthy targets are not enough: `up` waits for the deployment to be COMPLETED and says
    where it stopped when it is not (e.g. tasks the container health check keeps replacing)."""
    from types import SimpleNamespace

    from harness.stack.ecs_service import EcsService, TasksNotRunning

    service = EcsService.__new__(EcsService)  # only the wait is under test: no tasks started
    asked: list[tuple[float, float]] = []

    def never_steady(timeout_s: float, poll_s: float) -> bool:
        asked.append((timeout_s, poll_s))
        return False

    service.controller = SimpleNamespace(  # type: ignore[assignment]
        wait_steady=never_steady,
        primary=SimpleNamespace(rollout_state="IN_PROGRESS", rollout_state_reason=""),
    )
    service.config = SimpleNamespace(service_name="query-service")  # type: ignore[assignment]
    with pytest.raises(TasksNotRunning, match=r"did not reach a steady state in 2 s \(IN_PROGRESS\)"):
        service.wait_steady(2.0)
    assert asked == [(2.0, 0.005)]
