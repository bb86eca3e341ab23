"""Doctor on a stack of its own: all well, then each thing broken on purpose, then put back.

The tests run in file order on one stack: each breaks one thing, asserts the matching check
FAILs with the right next step, and repairs it. The poison record comes last: its errors stay in
the log window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status
from harness.doctor.runner import run
from harness.stack import commands

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from harness.stack.stack import Stack, StackConfig

    state_dir: Path = tmp_path_factory.mktemp("doctor-stack")
    # AWS's health-check and deployment periods divided by 20, as the plugin's stacks run
    stack = Stack(StackConfig(edge_port=0, gateway_port=0, state_dir=state_dir, time_scale=20))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def context(running: Any) -> Context:
    state = running.state()
    return Context(running.infra, state["region"], state["edge_url"], state=state, window_s=600)


def clients(running: Any, service: str) -> Any:
    from harness.stack.provision import aws_client

    return aws_client(service, running.state()["edge_url"], running.state()["region"])


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def failing(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings if f.status == Status.FAIL}


def test_doctor_healthy_stack_has_no_failure(context: Context) -> None:
    findings = run(context)
    assert failing(findings) == {}, "\n".join(f"{f.check}: {f.evidence}" for f in findings)
    checks = by_check(findings)
    assert checks["routing.vpc_link"].status == Status.NA  # no VPC link exists locally
    assert checks["sync.read_side"].status == Status.PASS
    assert "every one is on the read side" in checks["sync.read_side"].evidence[0]


def test_doctor_makes_no_mutating_call(context: Context) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        seen.append((f"{model.service_model.service_name}:{model.name}", dict(params)))

    for service in ("dynamodb", "lambda", "sqs", "ecs", "iam", "logs", "apigateway", "elbv2"):
        context.client(service).meta.events.register("provide-client-params", record)
    run(context)
    assert seen, "no call was recorded"
    reads = ("Describe", "List", "Get", "Filter", "Query", "Scan", "BatchGet")
    others = [(op, params) for op, params in seen if not op.split(":")[1].startswith(reads)]
    # the one allowed exception: a peek at the on-failure queue that hides nothing
    assert {op for op, _ in others} <= {"sqs:ReceiveMessage"}
    assert all(params.get("VisibilityTimeout") == 0 for _, params in others)


def test_doctor_disabled_mapping_fails_sync_mapping(running: Any, context: Context) -> None:
    lam = clients(running, "lambda")
    uuid = lam.list_event_source_mappings(FunctionName="stream-processor")["EventSourceMappings"][
        0
    ]["UUID"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        found = failing(run(context))
        assert "sync.mapping" in found
        assert f"--uuid {uuid} --enabled" in found["sync.mapping"].next_step
    finally:
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert "sync.mapping" not in failing(run(context))


def test_doctor_service_scaled_to_zero_fails_service_steady(running: Any, context: Context) -> None:
    ecs = clients(running, "ecs")
    cluster, service = context.infra.cluster_name, context.infra.service_definition["serviceName"]
    desired = ecs.describe_services(cluster=cluster, services=[service])["services"][0][
        "desiredCount"
    ]
    ecs.update_service(cluster=cluster, service=service, desiredCount=0)
    try:
        found = failing(run(context))
        assert "service.steady" in found
        assert any("desired count is 0" in line for line in found["service.steady"].evidence)
        assert "--desired-count" in found["service.steady"].next_step
    finally:
        ecs.update_service(cluster=cluster, service=service, desiredCount=desired)


def wait_for(condition: Any, timeout_s: float = 180.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_doctor_revision_that_cannot_start_is_explained(running: Any, context: Context) -> None:
    ecs = clients(running, "ecs")
    cluster, service = context.infra.cluster_name, context.infra.service_definition["serviceName"]
    controller = running.ecs.controller
    assert controller.wait_steady(180)
    good = controller.primary.revision.revision
    family = controller.primary.revision.family
    definition = ecs.describe_task_definition(taskDefinition=f"{family}:{good}")["taskDefinition"]
    container = dict(definition["containerDefinitions"][0])
    container["environment"] = [*container["environment"], {"name": "LOG_LEVEL", "value": "LOUD"}]
    keys = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities")
    broken = ecs.register_task_definition(
        **{k: definition[k] for k in keys}, containerDefinitions=[container]
    )["taskDefinition"]["revision"]
    try:
        ecs.update_service(cluster=cluster, service=service, taskDefinition=f"{family}:{broken}")
        wait_for(
            lambda: controller.primary.revision.revision == good and controller.steady(),
            what="the circuit breaker's rollback",
        )
        findings = by_check(run(context))
        stopped = findings["service.stopped_tasks"]
        assert stopped.status == Status.FAIL
        assert any(
            f"{family}:{broken}" in line and "the container exited" in line
            for line in stopped.evidence
        )
        assert "log" in stopped.next_step
        steady = findings["service.steady"]
        assert steady.status == Status.WARN
        assert any("deployment failed" in line for line in steady.evidence)
    finally:
        ecs.deregister_task_definition(taskDefinition=f"{family}:{broken}")


def test_doctor_killed_task_is_explained(running: Any, context: Context) -> None:
    import os
    import signal

    controller = running.ecs.controller
    assert controller.wait_steady(180)
    victim = next(t for t in controller.snapshot() if t.last_status == "RUNNING" and t.pid)
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(
        lambda: any(
            t.id == victim.id and t.last_status == "STOPPED" for t in controller.snapshot()
        ),
        what="the killed task to be STOPPED",
    )
    stopped = failing(run(context))["service.stopped_tasks"]
    assert any(
        victim.id in line and "Essential container in task exited" in line
        for line in stopped.evidence
    )
    assert controller.wait_steady(180)  # replaced


def test_doctor_removed_permission_fails_that_role(running: Any, context: Context) -> None:
    iam = clients(running, "iam")
    role = "stream-processor-role"
    name = iam.list_role_policies(RoleName=role)["PolicyNames"][0]
    original = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    document = json.loads(json.dumps(original))
    for statement in document["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        statement["Action"] = [a for a in actions if a != "dynamodb:GetRecords"] or [
            "dynamodb:DescribeStream"
        ]
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    try:
        found = failing(run(context))
        assert f"permissions.{role}" in found
        assert any(
            "denied: dynamodb:GetRecords" in line for line in found[f"permissions.{role}"].evidence
        )
        assert "iam.tf" in found[f"permissions.{role}"].next_step
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))
    assert f"permissions.{role}" not in failing(run(context))


def test_doctor_public_api_without_policy_fails_routing_api(running: Any, context: Context) -> None:
    apigw = clients(running, "apigateway")
    title = context.infra.api_document["info"]["title"]
    api = next(a for a in apigw.get_rest_apis()["items"] if a["name"] == title)
    apigw.update_rest_api(
        restApiId=api["id"],
        patchOperations=[
            {"op": "replace", "path": "/endpointConfiguration/types/PRIVATE", "value": "EDGE"},
            {"op": "replace", "path": "/policy", "value": ""},
        ],
    )
    try:
        found = failing(run(context))["routing.api"]
        assert any("not PRIVATE" in line for line in found.evidence)
        assert any("no resource policy" in line for line in found.evidence)
    finally:
        apigw.update_rest_api(
            restApiId=api["id"],
            patchOperations=[
                {"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "PRIVATE"},
                {"op": "replace", "path": "/policy", "value": api["policy"]},
            ],
        )
    assert "routing.api" not in failing(run(context))


def test_doctor_missing_log_group_fails_logs_groups(running: Any, context: Context) -> None:
    logs = clients(running, "logs")
    logs.delete_log_group(logGroupName="/aws/lambda/query-lambda")
    try:
        found = failing(run(context))["logs.groups"]
        assert "/aws/lambda/query-lambda: missing" in found.evidence
    finally:
        logs.create_log_group(logGroupName="/aws/lambda/query-lambda")


def test_doctor_unreachable_targets_fail_routing_targets(context: Context) -> None:
    import dataclasses

    dead = {**(context.state or {}), "replicas": [{"id": "gone", "url": "http://127.0.0.1:9"}]}
    found = failing(run(dataclasses.replace(context, state=dead)))["routing.targets"]
    assert "0 of 1 targets healthy" in found.evidence[0]
    assert "502" in found.next_step


def test_doctor_service_code_missing_fails_service_image(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "service.app" else real(name, *a),
    )
    found = failing(run(context))["service.image"]
    assert "cannot be imported" in found.evidence[0]


def test_doctor_read_key_collision_fails_sync_collisions(running: Any, context: Context) -> None:
    dynamodb = clients(running, "dynamodb")
    created = int(time.time() * 1000)
    base = {
        "created_at": created,
        "user_id": "user_doctor_same_ms",
        "notification_title": "t",
        "status": "SENT",
        "platform": "IOS",
        "device_token": "d",
        "payload": "{}",
    }
    commands.put_command(dynamodb, {**base, "transaction_id": "tx_doctor_a"})
    commands.wait_for_sync(dynamodb, "user_doctor_same_ms", created, timeout_s=30)
    commands.put_command(dynamodb, {**base, "transaction_id": "tx_doctor_b"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = failing(run(context))
        if "sync.collisions" in found:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the collision was never reported")
    evidence = " ".join(found["sync.collisions"].evidence)
    assert "tx_doctor_b" in evidence and "held by tx_doctor_a" in evidence
    assert "0001-read-key-collisions" in found["sync.collisions"].next_step


def test_doctor_poison_record_fails_sync_dlq_and_errors(running: Any, context: Context) -> None:
    dynamodb, sqs = clients(running, "dynamodb"), clients(running, "sqs")
    record = {
        "transaction_id": "tx_doctor_poison",
        "created_at": int(time.time() * 1000),
        "user_id": "user_doctor",
        "notification_title": "t",
        "status": "WAT",
        "platform": "IOS",
        "device_token": "d",
        "payload": "{}",
    }
    commands.put_command(dynamodb, record)
    queue = sqs.get_queue_url(QueueName=context.infra.mappings[0].on_failure_queue)["QueueUrl"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        depth = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )
        if int(depth["Attributes"]["ApproximateNumberOfMessages"]):
            break
        time.sleep(0.25)
    else:
        pytest.fail("the poison record never reached the on-failure queue")
    found = failing(run(context))
    assert {"sync.dlq", "sync.errors", "sync.read_side"} <= found.keys()
    dlq = found["sync.dlq"]
    assert any("RetryAttemptsExhausted" in line and "shard" in line for line in dlq.evidence)
    assert "get-shard-iterator" in dlq.next_step and "AT_SEQUENCE_NUMBER" in dlq.next_step
    assert any("tx_doctor_poison" in line for line in found["sync.read_side"].evidence)
    # doctor only peeked: the message is still there for whoever handles it
    depth = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(depth["Attributes"]["ApproximateNumberOfMessages"]) >= 1


def test_doctor_disabled_stream_fails_sync_stream(running: Any, context: Context) -> None:
    """Last: a re-enabled stream has a new ARN, and the mapping would have to be made again."""
    clients(running, "dynamodb").update_table(
        TableName=context.infra.mappings[0].source_table,
        StreamSpecification={"StreamEnabled": False},
    )
    found = failing(run(context))
    assert found["sync.stream"].evidence == ["the stream is disabled"]
    assert "--stream-specification StreamEnabled=true" in found["sync.stream"].next_step
