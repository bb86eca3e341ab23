"""EcsApi: ECS's own errors for bad input, answered before anything is forwarded or changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.ecs.api import TARGET_PREFIX, EcsApi, EcsError, validate_task_definition
from harness.ecs.controller import ServiceConfig, ServiceController, failure_threshold
from harness.ecs.runner import TaskRunner
from tests.harness.ecs.conftest import revision


@pytest.fixture
def api(tmp_path: Path) -> Any:
    runner = TaskRunner("fake_service:create_app", base_env={}, log_dir=tmp_path)
    controller = ServiceController(
        ServiceConfig(cluster="c", service_name="svc"), revision(1), runner
    )
    yield EcsApi(controller, "http://127.0.0.1:9", "test")  # nothing listens: no forwarding


def call(api: EcsApi, action: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"x-amz-target": TARGET_PREFIX + action}
    return api.handle(headers, json.dumps(params).encode())


def test_update_service_negative_desired_count_is_invalid_parameter(api: EcsApi) -> None:
    status, body = call(
        api, "UpdateService", {"cluster": "c", "service": "svc", "desiredCount": -1}
    )
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert api.controller.desired_count == 2


def test_describe_tasks_unknown_task_is_a_missing_failure(api: EcsApi) -> None:
    status, body = call(api, "DescribeTasks", {"cluster": "c", "tasks": ["abc"]})
    assert status == 200 and body == {
        "tasks": [],
        "failures": [{"arn": "abc", "reason": "MISSING"}],
    }
    status, body = call(api, "DescribeTasks", {"cluster": "c", "tasks": []})
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_list_tasks_bad_desired_status_is_invalid_parameter(api: EcsApi) -> None:
    status, body = call(api, "ListTasks", {"cluster": "c", "desiredStatus": "SLEEPING"})
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_stop_task_unknown_is_invalid_parameter(api: EcsApi) -> None:
    status, body = call(api, "StopTask", {"cluster": "c", "task": "nope"})
    assert status == 400 and body["message"] == "The referenced task was not found."


GOOD = {
    "family": "f",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [{"name": "a", "image": "i"}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"containerDefinitions": []}, "Container list cannot be empty."),
        ({"containerDefinitions": [{"name": "a"}]}, "Container.name and Container.image"),
        ({"networkMode": "mesh"}, "Network mode mesh is not valid."),
        ({"networkMode": "bridge"}, "Fargate only supports network mode 'awsvpc'."),
        ({"memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096"),
        ({"cpu": "1 vCPU", "memory": "1 GB"}, "No Fargate configuration exists"),
        ({"cpu": "lots"}, "Invalid setting for cpu or memory"),
        (
            {
                "containerDefinitions": [
                    {"name": "a", "image": "i", "logConfiguration": {"logDriver": "x"}}
                ]
            },
            "Log driver x is not supported.",
        ),
    ],
)
def test_invalid_task_definitions_are_client_exceptions(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(EcsError) as caught:
        validate_task_definition({**GOOD, **change})
    assert caught.value.code == "ClientException"
    assert message in caught.value.message


def test_valid_task_definitions_pass() -> None:
    validate_task_definition(GOOD)
    validate_task_definition({**GOOD, "cpu": "1 vCPU", "memory": "2 GB"})


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (2, 3), (7, 4), (10, 5), (1000, 200)])
def test_circuit_breaker_threshold_is_half_desired_clamped_3_to_200(
    desired: int, threshold: int
) -> None:
    assert failure_threshold(desired) == threshold
