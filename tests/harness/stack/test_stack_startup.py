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
