"""`query-harness verify` items on the session's stack: each passes as built and FAILs, naming the
cause, when the thing it checks is broken (a route removed, the stream stopped, ap_id not copied,
a slow service, a gateway losing requests, the scaling policy removed, the policy opened to any
source, the service's request logging turned off)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.ingress.gateway import Gateway
from harness.ingress.servers import ASGIServer, send_json
from harness.stack.provision import build_lambda_zip
from harness.verify.checks import availability, contract, data, health, logs, performance, security
from harness.verify.load import run_load
from harness.verify.model import Status
from harness.verify.target import Options, Target

ROOT = Path(__file__).resolve().parents[2]
API = json.loads((ROOT / "infra" / "api-gateway" / "internal-api.json").read_text())


@pytest.fixture
def target(stack) -> Target:
    if stack.stack is None:
        pytest.skip("breaking the stack needs one this session started")
    state = stack.stack.state()
    return Target(
        state["gateway_url"], state["edge_url"], state["region"], log_dir=Path(state["log_dir"]),
        replicas=state["replicas"], vpc_cidrs=stack.stack.config.allowed_source_cidrs, stack=stack.stack,
    )


@pytest.fixture
def options() -> Options:
    return Options(duration_s=5.0, rate=6.0, sync_timeout_s=20.0, records_per_user=12, root=ROOT)


def _gateway(target: Target, document: dict[str, Any], upstream: str | None = None, **kw: Any) -> Gateway:
    return Gateway(document, upstream or target.stack.load_balancer.url, **kw).start()


def _facts(result) -> dict[str, str]:
    return {label["en"]: value for label, value in result.evidence.facts}


def test_verify_item1_route_removed_from_the_gateway_fails(target, options, monkeypatch) -> None:
    monkeypatch.setattr(contract, "MAX_EXAMPLES", 2)
    document = json.loads(json.dumps(API))
    del document["paths"]["/query/marketing"]
    gateway = _gateway(target, document)
    try:
        target.gateway_url = gateway.stage_url
        result = contract.check_endpoints(target, options)
    finally:
        gateway.stop()
    assert result.status is Status.FAIL
    assert any("POST /query/marketing: 403" in f and "does not define this route" in f
               for f in result.evidence.failures), result.evidence.failures


def test_verify_item2_passes_and_fails_when_the_stream_stops(target, options, aws) -> None:
    assert data.check_query_results(target, options).status is Status.PASS
    [mapping] = aws("lambda").list_event_source_mappings(FunctionName="stream-processor")["EventSourceMappings"]
    aws("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        options.sync_timeout_s, options.seed = 3.0, options.seed + 1
        result = data.check_query_results(target, options)
    finally:
        aws("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert result.status is Status.FAIL
    assert "did not receive every record" in result.evidence.failures[0]
    assert any("missing" in f for f in result.evidence.failures)


@pytest.fixture
def stream_processor_without_ap_id(aws) -> Iterator[None]:
    """The stream processor redeployed (UpdateFunctionCode) with a records.py that drops ap_id."""
    original = build_lambda_zip()
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(buffer, "w") as broken:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "lambdas/records.py":
                assert b'"ap_id": record.ap_id,' in content
                content = content.replace(b'"ap_id": record.ap_id,', b'"ap_id": None,')
            broken.writestr(entry, content)
    aws("lambda").update_function_code(FunctionName="stream-processor", ZipFile=buffer.getvalue())
    try:
        yield
    finally:
        aws("lambda").update_function_code(FunctionName="stream-processor", ZipFile=original)


def test_verify_item3_passes(target, options) -> None:
    result = data.check_ap_id_sync(target, options)
    assert result.status is Status.PASS, result.evidence.failures
    assert "sync latency median" in _facts(result)


def test_verify_item3_ap_id_not_copied_fails(target, options, stream_processor_without_ap_id) -> None:
    options.sync_timeout_s = 4.0
    result = data.check_ap_id_sync(target, options)
    assert result.status is Status.FAIL
    failures = result.evidence.failures
    assert any("INSERT with ap_id: expected ap_id='mobile-app-001'" in f for f in failures), failures


def test_verify_item4_passes_and_an_unhealthy_task_fails(target, options) -> None:
    assert health.check_health(target, options).status is Status.PASS
    target.stack = target.log_dir = None  # judge from the state's view: one task reported unhealthy
    target.replicas = [{**target.replicas[0], "state": "unhealthy"}, *target.replicas[1:]]
    result = health.check_health(target, options)
    assert result.status is Status.FAIL
    assert "state unhealthy" in result.evidence.failures[0]


class _Upstream:
    """An upstream in place of the service: every request is answered by :meth:`answer`."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.answer(send)

    async def answer(self, send) -> None:
        await send_json(send, 200, {"records": [], "count": 0, "next_token": None}, [])


class _SlowService(_Upstream):
    """Answers every request after 0.6 s: a replica slower than the 500 ms limit."""

    async def answer(self, send) -> None:
        await asyncio.sleep(0.6)
        await super().answer(send)


def test_verify_item5_slow_service_fails_on_p99(target, options) -> None:
    slow = ASGIServer(_SlowService(), host="127.0.0.1", port=0, name="slow")
    slow.start()
    gateway = _gateway(target, API, upstream=slow.url)
    try:
        target.gateway_url = gateway.stage_url
        result = performance.check_response_time(target, options)
    finally:
        gateway.stop()
        slow.stop()
    assert result.status is Status.FAIL
    assert any("p99" in f and ">= 500 ms" in f for f in result.evidence.failures), result.evidence.failures
    assert result.evidence.pictures and "<svg" in result.evidence.pictures[0].svg


class _LossyService(_Upstream):
    """Answers every request with an empty page, except every fourth with a 503: an upstream that
    loses a quarter of the requests."""

    def __init__(self) -> None:
        self.count = itertools.count(1)

    async def answer(self, send) -> None:
        if next(self.count) % 4 == 0:
            await send_json(send, 503, {"message": "lost"}, [])
        else:
            await super().answer(send)


def test_verify_item6_lists_each_request_a_lossy_upstream_failed(target, options) -> None:
    """Judged on recorded evidence: a real load run (locust, 4 s) through a gateway whose upstream
    loses a quarter of the requests; the kill and the deployment of the live check need a run of
    30 s or more, which make verify does (a completed rollout and a stopped task are given)."""
    assert availability.ecs_gap(target, options) is None  # the live check runs on this stack
    lossy = ASGIServer(_LossyService(), host="127.0.0.1", port=0, name="lossy")
    lossy.start()
    gateway = _gateway(target, API, upstream=lossy.url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            samples = run_load(gateway.stage_url, 10.0, 4.0, Path(tmp))
    finally:
        gateway.stop()
        lossy.stop()
    result = availability.judge_availability(
        samples, "COMPLETED (1 deployment(s))", "task/x", "STOPPED: verify: item 6 kills one task")
    lost = [s for s in samples if s.status == 503]
    assert result.status is Status.FAIL and lost, [(s.status, s.error) for s in samples]
    assert result.evidence.failures[0].startswith(f"{len(lost)} of {len(samples)} requests failed")
    listed = result.evidence.failures[1:]
    assert len(listed) == len(lost) and all(f"t={s.t:.2f}s {s.route} status 503" in line
                                            for s, line in zip(lost, listed, strict=True))


def test_verify_item7_fails_naming_the_removed_scaling_policy(target, options, aws) -> None:
    aas = aws("application-autoscaling")
    resource = "service/query-service-cluster/query-service"
    [policy] = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)["ScalingPolicies"]
    keys = ("PolicyName", "ServiceNamespace", "ResourceId", "ScalableDimension")
    aas.delete_scaling_policy(**{k: policy[k] for k in keys})
    try:
        options.duration_s = 3.0
        result = availability.check_autoscaling(target, options)
    finally:
        aas.put_scaling_policy(**{k: policy[k] for k in keys}, PolicyType=policy["PolicyType"],
                               TargetTrackingScalingPolicyConfiguration=policy[
                                   "TargetTrackingScalingPolicyConfiguration"])
    assert result.status is Status.FAIL
    assert result.evidence.failures[0] == (
        f"no target-tracking scaling policy on {resource}: no alarm asks for a scale-out or a scale-in")
    assert "did not scale out and back in" in result.summary["en"]
    [timeline] = result.evidence.pictures
    assert "<svg" in timeline.svg and "desired" in timeline.svg


def test_verify_item8_live_refuses_outside_and_fails_when_the_policy_is_opened(
    target, options, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("CHECKOV_VENV", str(tmp_path / "no-checkov"))  # 8c is tested on its own
    gateway = _gateway(target, API, allowed_source_cidrs=("127.0.0.1/32",))
    opened = json.loads(json.dumps(API))
    opened["x-amazon-apigateway-policy"]["Statement"] = [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]
    open_gateway = _gateway(target, opened, allowed_source_cidrs=("127.0.0.1/32",))
    try:
        target.vpc_cidrs = ("127.0.0.1/32",)
        target.gateway_url = gateway.stage_url
        closed = security.check_vpc_only(target, options)
        target.gateway_url = open_gateway.stage_url
        result = security.check_vpc_only(target, options)
    finally:
        gateway.stop()
        open_gateway.stop()
    assert closed.status is Status.NOT_CHECKED  # 8a and 8b pass; 8c has no checkov here
    assert "403" in _facts(closed)["8a request from outside the VPC"]
    assert result.status is Status.FAIL
    assert "8a: a request from outside the VPC was answered 200" in result.evidence.failures[0]


@pytest.fixture
def service_request_logging_off(target, aws) -> Iterator[None]:
    """The service redeployed (a task definition revision) with LOG_LEVEL=WARNING: its INFO line
    per request, the one with the request id, is no longer written; rolled back afterwards."""
    ecs, family = aws("ecs"), "query-service-task"
    controller = target.stack.ecs.controller
    assert controller.wait_steady(120), controller.events.messages()
    good = controller.primary.revision.revision
    definition = ecs.describe_task_definition(taskDefinition=f"{family}:{good}")["taskDefinition"]
    container = dict(definition["containerDefinitions"][0])
    container["environment"] = [*(e for e in container["environment"] if e["name"] != "LOG_LEVEL"),
                                {"name": "LOG_LEVEL", "value": "WARNING"}]
    keys = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities")
    quiet = ecs.register_task_definition(**{k: definition[k] for k in keys},
                                         containerDefinitions=[container])["taskDefinition"]["revision"]
    update = {"cluster": "query-service-cluster", "service": "query-service"}
    ecs.update_service(**update, taskDefinition=f"{family}:{quiet}")
    try:
        assert controller.wait_steady(120) and controller.primary.revision.revision == quiet
        yield
    finally:
        ecs.update_service(**update, taskDefinition=f"{family}:{good}")
        assert controller.wait_steady(120), controller.events.messages()
        ecs.deregister_task_definition(taskDefinition=f"{family}:{quiet}")  # leave it as found


def test_verify_item10_passes(target, options) -> None:
    result = logs.check_logs(target, options)
    assert result.status is Status.PASS, result.evidence.failures
    coverage = {row[0]: row[1] for row in result.evidence.tables[0].rows}
    assert set(coverage.values()) == {"200/200"} and len(coverage) == 3
    batches = _facts(result)["stream processor invocations / with a batch line with counts"]
    invocations, with_counts = batches.split(" / ")
    assert int(invocations) > 0 and with_counts == invocations


def test_verify_item10_names_the_service_log_and_the_requests_when_request_logging_is_off(
    target, options, monkeypatch, service_request_logging_off
) -> None:
    monkeypatch.setattr(logs, "SAMPLE_SIZE", 40)
    result = logs.check_logs(target, options)
    assert result.status is Status.FAIL
    coverage = {row[0]: row[1] for row in result.evidence.tables[0].rows}
    assert coverage["/ecs/query-service"] == "0/40", coverage
    assert coverage["gateway access log"] == "40/40"
    assert "/ecs/query-service holds" in result.evidence.failures[0]
    incomplete = [f for f in result.evidence.failures if f.startswith("request verify-log-")]
    assert len(incomplete) == 40 and all(f.endswith("not found in /ecs/query-service") for f in incomplete)
