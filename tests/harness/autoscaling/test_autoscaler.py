"""Autoscaler on the endpoint: registered policy, CloudWatch datapoints in, desiredCount and
AWS-shaped scaling activities out."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.autoscaling.controller import Autoscaler
from harness.autoscaling.target_tracking import ScalableTarget, TargetTrackingPolicy
from harness.cloudwatch import EcsServiceMetrics, MetricSink, TaskProcess

SCALE = 60.0  # one AWS minute is one second here


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(aws_client_factory: Callable[..., Any]) -> ScalableTarget:
    """A fresh ECS service (desired 2) in the endpoint, as a scalable target 2..6."""
    ecs = aws_client_factory("ecs")
    cluster, name = f"c-{uuid.uuid4().hex[:8]}", "query-service"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=f"f-{cluster}", containerDefinitions=[{"name": "app", "image": "i", "memory": 512}]
    )
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=f"f-{cluster}", desiredCount=2
    )
    return ScalableTarget(f"service/{cluster}/{name}", min_capacity=2, max_capacity=6)


def desired(aws_client_factory: Callable[..., Any], target: ScalableTarget) -> int:
    answer = aws_client_factory("ecs").describe_services(
        cluster=target.cluster, services=[target.service]
    )
    return int(answer["services"][0]["desiredCount"])


def activities(aws_client_factory: Callable[..., Any], target: ScalableTarget) -> list[Any]:
    aas = aws_client_factory("application-autoscaling")
    answer = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=target.resource_id)
    return list(answer["ScalingActivities"])


def put_cpu(sink: MetricSink, clock: Clock, target: ScalableTarget, values: list[float]) -> None:
    """One datapoint per period, starting at the clock's period; the clock ends after them."""
    dims = (("ClusterName", target.cluster), ("ServiceName", target.service))
    for value in values:
        sink.add("AWS/ECS", "CPUUtilization", dims, value, "Percent")
        clock.now += sink.period_s
    sink.flush()


def test_autoscaler_scales_out_then_in_and_records_activities(
    aws_client_factory: Callable[..., Any], endpoint: Any, service: ScalableTarget
) -> None:
    clock = Clock(time.time() // 1 - 40)
    policy = TargetTrackingPolicy("cpu-tt", 60.0, scale_out_cooldown_s=60, scale_in_cooldown_s=120)
    scaler = Autoscaler(
        aws_client_factory, endpoint.url, service, policy, time_scale=SCALE, clock=clock
    )
    scaler.register()
    aas = aws_client_factory("application-autoscaling")
    (stored,) = aas.describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=service.resource_id
    )["ScalingPolicies"]
    assert stored["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 60.0
    sink = MetricSink(aws_client_factory("cloudwatch"), period_s=60 / SCALE, clock=clock)

    put_cpu(sink, clock, service, [90.0, 90.0])
    assert scaler.step().new_capacity is None  # two datapoints above: not yet
    put_cpu(sink, clock, service, [90.0])
    assert scaler.step().new_capacity == 3
    assert desired(aws_client_factory, service) == 3

    put_cpu(sink, clock, service, [5.0] * 14)
    assert scaler.step().new_capacity is None  # 14 below: not yet
    put_cpu(sink, clock, service, [5.0])
    assert scaler.step().new_capacity == 2
    assert desired(aws_client_factory, service) == 2

    newest, oldest = activities(aws_client_factory, service)
    assert oldest["Description"] == "Setting desired count to 3."
    assert "AlarmHigh" in oldest["Cause"] and oldest["Cause"].endswith("triggered policy cpu-tt")
    assert oldest["StatusCode"] == "Successful" and oldest["EndTime"] >= oldest["StartTime"]
    assert newest["Description"] == "Setting desired count to 2."
    assert "AlarmLow" in newest["Cause"]


def test_describe_scaling_activities_validates_like_aws(
    aws_client_factory: Callable[..., Any],
) -> None:
    import botocore.exceptions

    aas = aws_client_factory("application-autoscaling")
    answer = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId="service/x/none")
    assert answer["ScalingActivities"] == []
    with pytest.raises(botocore.exceptions.ParamValidationError):
        aas.describe_scaling_activities()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def test_autoscaler_follows_measured_cpu_out_and_back_to_min(
    aws_client_factory: Callable[..., Any],
    endpoint: Any,
    service: ScalableTarget,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Real time at K=60: two busy tasks scale the service out; idle ones bring it back."""
    busy = [sys.executable, "-c", "while True: pass"]
    idle = [sys.executable, "-c", "import time; time.sleep(120)"]
    processes += [subprocess.Popen(busy) for _ in range(2)]
    tasks = [TaskProcess(f"t{i}", p.pid, 256, 512) for i, p in enumerate(processes)]
    sink = MetricSink(aws_client_factory("cloudwatch"), period_s=60 / SCALE)
    sink.add_collector(EcsServiceMetrics(service.cluster, service.service, lambda: tasks))
    # a low target: on a loaded 2-core machine a busy loop may get well under a quarter core
    policy = TargetTrackingPolicy("cpu", 10.0, scale_out_cooldown_s=60, scale_in_cooldown_s=120)
    scaler = Autoscaler(aws_client_factory, endpoint.url, service, policy, time_scale=SCALE)
    scaler.register()
    sink.start()
    scaler.start()
    try:
        assert wait_until(lambda: desired(aws_client_factory, service) >= 3, 30), scaler.decisions[
            -5:
        ]
        for process in processes:
            process.kill()
        processes += [subprocess.Popen(idle) for _ in range(2)]
        tasks[:] = [TaskProcess(f"i{i}", p.pid, 256, 512) for i, p in enumerate(processes[2:])]
        assert wait_until(lambda: desired(aws_client_factory, service) == 2, 60), scaler.decisions[
            -3:
        ]
    finally:
        scaler.stop()
        sink.stop()
    steps = [a["Description"] for a in reversed(activities(aws_client_factory, service))]
    assert steps[-1] == "Setting desired count to 2." and len(steps) >= 2


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
