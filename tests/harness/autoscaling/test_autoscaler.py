"""Autoscaler on the endpoint: registered policy, CloudWatch datapoints in, desiredCount and
AWS-shaped scaling activities out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from harness.autoscaling.controller import Autoscaler
from harness.autoscaling.target_tracking import ScalableTarget, TargetTrackingPolicy
from harness.cloudwatch import MetricSink

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


def registered(
    aws_client_factory: Callable[..., Any],
    endpoint: Any,
    service: ScalableTarget,
    policy: TargetTrackingPolicy,
) -> tuple[Autoscaler, Clock]:
    """An autoscaler of ``policy`` on ``service``, registered, on a clock 40 s in the past."""
    clock = Clock(time.time() // 1 - 40)
    scaler = Autoscaler(
        aws_client_factory, endpoint.url, service, policy, time_scale=SCALE, clock=clock
    )
    scaler.register()
    return scaler, clock


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
    policy = TargetTrackingPolicy("cpu-tt", 60.0, scale_out_cooldown_s=60, scale_in_cooldown_s=120)
    scaler, clock = registered(aws_client_factory, endpoint, service, policy)
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


def test_autoscaler_follows_what_is_registered_now(
    aws_client_factory: Callable[..., Any], endpoint: Any, service: ScalableTarget
) -> None:
    """Scaling works from what Application Auto Scaling holds at each evaluation: suspended
    scale-out, a new maximum, and a deleted policy (AWS deletes its alarms) all take effect."""
    policy = TargetTrackingPolicy("cpu-tt", 60.0, scale_out_cooldown_s=0, scale_in_cooldown_s=0)
    scaler, clock = registered(aws_client_factory, endpoint, service, policy)
    aas = aws_client_factory("application-autoscaling")
    ids = {
        "ServiceNamespace": "ecs",
        "ResourceId": service.resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
    }
    sink = MetricSink(aws_client_factory("cloudwatch"), period_s=60 / SCALE, clock=clock)
    put_cpu(sink, clock, service, [90.0] * 3)

    aas.register_scalable_target(**ids, SuspendedState={"DynamicScalingOutSuspended": True})
    assert scaler.step().reason == "dynamic scale-out is suspended"
    aas.register_scalable_target(
        **ids, MaxCapacity=4, SuspendedState={"DynamicScalingOutSuspended": False}
    )
    put_cpu(sink, clock, service, [300.0])
    assert scaler.step().new_capacity == 4  # ceil(2 * 300 / 60) = 10, clamped to the new maximum
    assert desired(aws_client_factory, service) == 4

    aas.delete_scaling_policy(PolicyName="cpu-tt", **ids)
    put_cpu(sink, clock, service, [300.0])
    decision = scaler.step()
    assert (
        decision.new_capacity is None and decision.reason == "the scaling policy cpu-tt was deleted"
    )
    assert desired(aws_client_factory, service) == 4


def test_the_decision_record_keeps_the_newest_evaluations_only(
    aws_client_factory: Callable[..., Any],
    endpoint: Any,
    service: ScalableTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack idles for days: its autoscaler's record of evaluations must not grow with them."""
    from harness.autoscaling import controller

    monkeypatch.setattr(controller, "KEPT_DECISIONS", 3)
    scaler, clock = registered(
        aws_client_factory, endpoint, service, TargetTrackingPolicy("cpu-keep", 60.0)
    )
    for _ in range(5):
        clock.now += scaler.period_s
        scaler.step()
    assert len(scaler.decisions) == 3
    assert [at for at, _ in scaler.decisions] == [clock.now - 2 * scaler.period_s,
                                                  clock.now - scaler.period_s, clock.now]
