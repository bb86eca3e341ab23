"""The ECS API on the endpoint drives the service's tasks, as the AWS CLI and boto3 see it.

Every test leaves the service as it found it: the same revision, the same desired count, steady.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.load_loop import Load

CLUSTER, SERVICE, FAMILY = "query-service-cluster", "query-service", "query-service-task"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_stack(stack):
    if stack.stack is None or stack.stack.ecs is None:
        pytest.skip("needs a stack this session started (its ECS service runs here)")
    return stack.stack


@pytest.fixture
def ecs(stack) -> Any:
    return stack.client("ecs")


def wait_steady(own_stack, timeout_s: float = 180.0) -> None:
    assert own_stack.ecs.controller.wait_steady(timeout_s), (
        own_stack.ecs.controller.events.messages()
    )


def cli_env(stack) -> dict[str, str]:
    """The environment of an AWS CLI user pointed at the local endpoint."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": stack.edge_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": stack.region,
        "AWS_REGION": stack.region,
    }


def running_revisions(ecs) -> list[str]:
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return sorted(t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in tasks)


def test_tasks_are_listed_and_described_as_ecs_does(ecs, own_stack) -> None:
    wait_steady(own_stack)
    desired = own_stack.ecs.controller.desired_count
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
    assert len(arns) == desired
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    revision = own_stack.ecs.controller.primary.revision.short
    for task in tasks:
        assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
        assert task["healthStatus"] == "HEALTHY"
        assert task["taskDefinitionArn"].endswith(f":task-definition/{revision}")
        assert task["startedAt"] and task["group"] == f"service:{SERVICE}"
        assert task["taskArn"].startswith(f"arn:aws:ecs:{own_stack.config.region}:")
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert service["runningCount"] == desired and service["desiredCount"] == desired
    (deployment,) = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "COMPLETED"
    assert any("has reached a steady state." in e["message"] for e in service["events"])
    missing = ecs.describe_tasks(cluster=CLUSTER, tasks=["0" * 32])["failures"]
    assert missing == [{"arn": "0" * 32, "reason": "MISSING"}]


def test_bad_input_gets_ecs_errors_and_changes_nothing(ecs, own_stack) -> None:
    wait_steady(own_stack)
    before = (own_stack.ecs.controller.desired_count, len(own_stack.ecs.controller.deployments))
    cases = [
        ({"desiredCount": -1}, "InvalidParameterException"),
        ({"taskDefinition": f"{FAMILY}:999"}, "ClientException"),
        ({"taskDefinition": "no-such-family", "desiredCount": 5}, "ClientException"),
    ]
    for extra, code in cases:
        with pytest.raises(ClientError) as caught:
            ecs.update_service(cluster=CLUSTER, service=SERVICE, **extra)
        assert caught.value.response["Error"]["Code"] == code, extra
    with pytest.raises(ClientError) as caught:
        ecs.register_task_definition(
            family=FAMILY,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="4096",
            containerDefinitions=[{"name": "query-service", "image": "query-service:local"}],
        )
    assert caught.value.response["Error"]["Code"] == "ClientException"
    assert "No Fargate configuration exists" in caught.value.response["Error"]["Message"]
    after = (own_stack.ecs.controller.desired_count, len(own_stack.ecs.controller.deployments))
    assert after == before


def test_scale_out_and_in_through_the_api_loses_nothing(ecs, stack, own_stack) -> None:
    wait_steady(own_stack)
    desired = own_stack.ecs.controller.desired_count
    with Load(stack.gateway_url) as load:
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=desired + 1)
        assert own_stack.ecs.controller.desired_count == desired + 1  # acted on at once
        wait_steady(own_stack)
        assert len(own_stack.load_balancer.healthy_targets()) == desired + 1
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=desired)
        wait_steady(own_stack)
    assert load.failures == [] and len(load.statuses) > 5
    stopped = [
        t for t in own_stack.ecs.controller.snapshot() if t.last_status == "STOPPED" and t.stop_code
    ]
    assert stopped[0].stopped_reason.startswith(
        "Scaling activity initiated by (deployment ecs-svc/"
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_deploy_script_and_the_seed_rollback_command_change_the_revision(
    ecs, stack, own_stack
) -> None:
    wait_steady(own_stack)
    previous = own_stack.ecs.controller.primary.revision.revision
    env = {
        **cli_env(stack),
        "AWS_ACCOUNT_ID": "123456789012",
        "ECR_REPOSITORY": "query-service",
        "IMAGE_TAG": "local",
        "CLUSTER_NAME": CLUSTER,
        "SERVICE_NAME": SERVICE,
        "SKIP_IMAGE_BUILD": "true",
    }
    with Load(stack.gateway_url) as load:
        deployed = subprocess.run(
            ["bash", str(ROOT / "scripts" / "deploy-ecs.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stderr[-2000:]
        new = own_stack.ecs.controller.primary.revision.revision
        assert new > previous
        wait_steady(own_stack)
        assert (
            running_revisions(ecs) == [f"{FAMILY}:{new}"] * own_stack.ecs.controller.desired_count
        )
        # the seed's rollback plan, verbatim, with PREVIOUS_REVISION filled in
        rollback = (
            f"aws ecs update-service --cluster query-service-cluster --service query-service "
            f"--task-definition query-service-task:{previous}"
        )
        done = subprocess.run(
            rollback.split(), env=cli_env(stack), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        wait_steady(own_stack)
    assert (
        running_revisions(ecs) == [f"{FAMILY}:{previous}"] * own_stack.ecs.controller.desired_count
    )
    assert load.failures == [] and len(load.statuses) > 5
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert service["taskDefinition"].endswith(f"{FAMILY}:{previous}")
    ecs.deregister_task_definition(taskDefinition=f"{FAMILY}:{new}")  # leave it as found


def test_broken_revision_fails_and_rolls_back_without_a_failed_request(
    ecs, stack, own_stack
) -> None:
    wait_steady(own_stack)
    controller = own_stack.ecs.controller
    good = controller.primary.revision.revision
    definition = ecs.describe_task_definition(taskDefinition=f"{FAMILY}:{good}")["taskDefinition"]
    container = dict(definition["containerDefinitions"][0])
    container["environment"] = [
        *container["environment"],
        {"name": "LOG_LEVEL", "value": "LOUD"},  # the service refuses to start
    ]
    keys = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities")
    broken = ecs.register_task_definition(
        **{k: definition[k] for k in keys}, containerDefinitions=[container]
    )["taskDefinition"]["revision"]
    healthy: list[int] = []
    with Load(stack.gateway_url) as load:
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:{broken}")
        failed = controller.primary
        deadline = time.monotonic() + 180
        while (controller.primary is failed or not controller.steady()) and (
            time.monotonic() < deadline
        ):
            healthy.append(len(own_stack.load_balancer.healthy_targets()))
            time.sleep(0.05)
    assert failed.rollout_state == "FAILED" and failed.failed_tasks >= 3
    assert controller.primary.revision.revision == good
    assert min(healthy) >= 1  # minimumHealthyPercent 50 of 2
    assert load.failures == [] and len(load.statuses) > 5
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    messages = [e["message"] for e in service["events"]]
    assert (
        f"(service {SERVICE}) (deployment {failed.id}) deployment failed: tasks failed to start."
        in (messages)
    )
    assert service["taskDefinition"].endswith(f"{FAMILY}:{good}")
    assert running_revisions(ecs) == [f"{FAMILY}:{good}"] * own_stack.ecs.controller.desired_count
    ecs.deregister_task_definition(taskDefinition=f"{FAMILY}:{broken}")  # leave it as found
    stopped_arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=stopped_arns[:100])["tasks"]
    crashed = [t for t in stopped if t["taskDefinitionArn"].endswith(f":{broken}")]
    exited = [t for t in crashed if t["stopCode"] == "EssentialContainerExited"]
    assert len(exited) >= 3, [(t["stopCode"], t["stoppedReason"]) for t in crashed]
    assert {t["stoppedReason"] for t in exited} == {"Essential container in task exited"}
    assert {t["containers"][0]["exitCode"] for t in exited} == {1}
