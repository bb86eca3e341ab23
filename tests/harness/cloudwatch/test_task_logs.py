"""TaskLogShipper: awslogs stream names, new lines only, partial lines, retries, gone tasks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cloudwatch import AwsLogsConfig, TaskLogShipper, TaskProcess
from harness.stack.infra import load_infra


def messages(logs: Any, group: str, stream: str) -> list[str]:
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in events["events"]]


@pytest.fixture
def group(aws_client_factory: Callable[..., Any]) -> str:
    name = f"/ecs/test-{uuid.uuid4().hex[:6]}"
    aws_client_factory("logs").create_log_group(logGroupName=name)
    return name


def test_awslogs_config_from_the_task_definition_names_streams_as_ecs() -> None:
    config = AwsLogsConfig.from_container(load_infra().container)
    assert config == AwsLogsConfig("/ecs/query-service", "query-service", "query-service")
    assert config.stream_name("abc123") == "query-service/query-service/abc123"
    assert (
        AwsLogsConfig.from_container({"name": "x", "logConfiguration": {"logDriver": "json-file"}})
        is None
    )


def test_shipper_sends_each_new_line_once_and_waits_for_line_ends(
    aws_client_factory: Callable[..., Any], group: str, tmp_path: Path
) -> None:
    logs = aws_client_factory("logs")
    log = tmp_path / "task.log"
    log.write_text("starting\n\nhalf")
    tasks = [TaskProcess("t1", 1, 256, 512, log)]
    shipper = TaskLogShipper(logs, AwsLogsConfig(group, "svc", "app"), lambda: tasks)
    assert shipper.ship() == 1  # the blank line is skipped, "half" waits for its end
    with log.open("a") as handle:
        handle.write(" a line\nrequest id-42\n")
    assert shipper.ship() == 2
    assert shipper.ship() == 0
    assert messages(logs, group, "svc/app/t1") == ["starting", "half a line", "request id-42"]


def test_shipper_retries_after_a_failed_put_and_forgets_gone_tasks(
    aws_client_factory: Callable[..., Any], group: str, tmp_path: Path
) -> None:
    real = aws_client_factory("logs")
    failures = {"left": 1}

    class Flaky:
        exceptions = real.exceptions

        def create_log_stream(self, **kwargs: Any) -> Any:
            return real.create_log_stream(**kwargs)

        def put_log_events(self, **kwargs: Any) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("throttled")
            return real.put_log_events(**kwargs)

    log = tmp_path / "task.log"
    log.write_text("exit code 1\n")
    tasks = [TaskProcess("t2", 1, 256, 512, log)]
    shipper = TaskLogShipper(Flaky(), AwsLogsConfig(group, "svc", "app"), lambda: list(tasks))
    assert shipper.ship() == 0 and shipper.errors == 1
    tasks.clear()  # the task is gone: its lines are still sent, then it is forgotten
    assert shipper.ship() == 1
    assert messages(real, group, "svc/app/t2") == ["exit code 1"]
    with log.open("a") as handle:
        handle.write("late\n")
    assert shipper.ship() == 0
