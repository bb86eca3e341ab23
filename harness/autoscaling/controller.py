"""The autoscaler: registers the Terraform policy, watches the metric, changes desiredCount.

Application Auto Scaling's part for an ECS service, run by the harness: the scalable target and
the target-tracking policy from ``infra/`` are registered in the endpoint (moto stores them and
creates the two alarms), then once a period the policy's metric is read back from CloudWatch
(``get_metric_statistics``: ``AWS/ECS`` CPUUtilization, Average, per period), the
:class:`TargetTracker` decides, and a decision becomes ``ecs.update_service(desiredCount=...)``
and a scaling activity (Pending while the call runs, then Successful or Failed) recorded where
the endpoint answers ``describe-scaling-activities``.

Each evaluation reads the scalable target and the policy back from Application Auto Scaling, as
AWS's scaling works from what is registered: a deregistered target or a deleted policy (whose
alarms AWS deletes with it) stops scaling; new min/max capacity, target value, cooldowns,
``DisableScaleIn`` and the target's ``SuspendedState`` (dynamic scale-out / scale-in suspended)
apply from the next evaluation.

Time: the period is AWS's one minute divided by the time scale K, and so are the cooldowns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.autoscaling.activities import RECORD_PATH, activity
from harness.autoscaling.target_tracking import (
    LOW_DATAPOINTS,
    Decision,
    ScalableTarget,
    TargetTracker,
    TargetTrackingPolicy,
)
from harness.cloudwatch.metrics import period_for
from harness.cloudwatch.periodic import Periodic

__all__ = ["Autoscaler", "PREDEFINED_METRICS"]

logger = logging.getLogger(__name__)

#: the last evaluations kept for inspection (a day of them at K=1): an in-memory record with
#: no AWS counterpart, bounded so a long-running stack's autoscaler does not grow
KEPT_DECISIONS = 1440

#: predefined metric type -> (namespace, metric name)
PREDEFINED_METRICS = {
    "ECSServiceAverageCPUUtilization": ("AWS/ECS", "CPUUtilization"),
    "ECSServiceAverageMemoryUtilization": ("AWS/ECS", "MemoryUtilization"),
}


class Autoscaler:
    """Evaluates one target-tracking policy every period and scales the ECS service."""

    def __init__(
        self,
        clients: Callable[[str], Any],
        endpoint_url: str,
        target: ScalableTarget,
        policy: TargetTrackingPolicy,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if policy.metric_type not in PREDEFINED_METRICS:
            raise ValueError(f"unsupported predefined metric {policy.metric_type!r}")
        self.clients = clients
        self.endpoint_url = endpoint_url.rstrip("/")
        self.target = target
        self.policy = policy
        self.time_scale = time_scale
        self.period_s = period_for(time_scale)  # the metric's period: what the alarms count
        self.tracker = TargetTracker(target, policy, time_scale=time_scale)
        self.clock = clock
        self.alarm_names = {"high": "AlarmHigh", "low": "AlarmLow"}
        self.decisions: deque[tuple[float, Decision]] = deque(maxlen=KEPT_DECISIONS)
        self._loop = Periodic("autoscaler", self.period_s, self.step)

    # -- registration -----------------------------------------------------------------------
    def register(self) -> None:
        """RegisterScalableTarget and PutScalingPolicy, as ``terraform apply`` would."""
        aas = self.clients("application-autoscaling")
        ids = {
            "ServiceNamespace": self.target.service_namespace,
            "ResourceId": self.target.resource_id,
            "ScalableDimension": self.target.scalable_dimension,
        }
        aas.register_scalable_target(
            **ids, MinCapacity=self.target.min_capacity, MaxCapacity=self.target.max_capacity
        )
        answer = aas.put_scaling_policy(
            PolicyName=self.policy.name,
            PolicyType="TargetTrackingScaling",
            **ids,
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": self.policy.target_value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": self.policy.metric_type},
                "ScaleOutCooldown": int(self.policy.scale_out_cooldown_s),
                "ScaleInCooldown": int(self.policy.scale_in_cooldown_s),
                "DisableScaleIn": self.policy.disable_scale_in,
            },
        )
        for alarm in answer.get("Alarms", []):
            name = alarm["AlarmName"]
            self.alarm_names["high" if "AlarmHigh" in name else "low"] = name

    # -- one evaluation ---------------------------------------------------------------------
    def datapoints(self, now: float) -> list[float | None]:
        """The metric's Average per period, oldest first (None where a period has none), over
        twice the low alarm's periods: a missing datapoint is looked past, as CloudWatch does."""
        namespace, name = PREDEFINED_METRICS[self.policy.metric_type]
        current = int(now // self.period_s)
        first = current - 2 * LOW_DATAPOINTS - 1
        answer = self.clients("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=[
                {"Name": "ClusterName", "Value": self.target.cluster},
                {"Name": "ServiceName", "Value": self.target.service},
            ],
            StartTime=datetime.fromtimestamp(first * self.period_s, UTC),
            EndTime=datetime.fromtimestamp(now, UTC) + timedelta(seconds=1),
            Period=int(self.period_s),
            Statistics=["Average"],
        )
        by_period = {
            int(round(p["Timestamp"].timestamp() / self.period_s)): float(p["Average"])
            for p in answer.get("Datapoints", [])
        }
        if not by_period:
            return []
        # the newest period may still be open (not yet published): end at the newest present
        newest = max(by_period)
        if newest < current - 2:
            return []  # no recent data: the alarms have insufficient data
        return [by_period.get(i) for i in range(first, newest + 1)]

    def step(self) -> Decision:
        """Evaluate once, with the target and policy as registered now; scale when an alarm
        asks for it and dynamic scaling in that direction is not suspended."""
        now = self.clock()
        service = self._service()
        capacity = int(service["desiredCount"])
        missing = self.refresh()
        if missing is not None:
            decision = Decision(None, capacity, None, None, missing)
        else:
            decision = self.tracker.evaluate(self.datapoints(now), capacity, now)
        self.decisions.append((now, decision))
        if decision.new_capacity is not None:
            self._scale(decision)
        return decision

    def refresh(self) -> str | None:
        """Read the scalable target and the policy back; None when both are registered (the
        tracker then uses their current settings), else why nothing can scale."""
        aas = self.clients("application-autoscaling")
        ids = {
            "ServiceNamespace": self.target.service_namespace,
            "ResourceIds": [self.target.resource_id],
            "ScalableDimension": self.target.scalable_dimension,
        }
        targets = aas.describe_scalable_targets(**ids)["ScalableTargets"]
        if not targets:
            return f"no scalable target {self.target.resource_id} is registered"
        policies = aas.describe_scaling_policies(
            ServiceNamespace=self.target.service_namespace,
            ResourceId=self.target.resource_id,
            ScalableDimension=self.target.scalable_dimension,
            PolicyNames=[self.policy.name],
        )["ScalingPolicies"]
        if not policies:
            return f"the scaling policy {self.policy.name} was deleted"
        registered, config = targets[0], policies[0]["TargetTrackingScalingPolicyConfiguration"]
        suspended = registered.get("SuspendedState") or {}
        target = dataclasses.replace(
            self.target,
            min_capacity=int(registered["MinCapacity"]),
            max_capacity=int(registered["MaxCapacity"]),
            scale_out_suspended=bool(suspended.get("DynamicScalingOutSuspended", False)),
            scale_in_suspended=bool(suspended.get("DynamicScalingInSuspended", False)),
        )
        policy = dataclasses.replace(
            self.policy,
            target_value=float(config["TargetValue"]),
            scale_out_cooldown_s=float(
                config.get("ScaleOutCooldown", self.policy.scale_out_cooldown_s)
            ),
            scale_in_cooldown_s=float(
                config.get("ScaleInCooldown", self.policy.scale_in_cooldown_s)
            ),
            disable_scale_in=bool(config.get("DisableScaleIn", False)),
        )
        if (target, policy) != (self.target, self.policy):
            self.target, self.policy = target, policy
            self.tracker.reconfigure(target, policy)
        return None

    def _service(self) -> dict[str, Any]:
        answer = self.clients("ecs").describe_services(
            cluster=self.target.cluster, services=[self.target.service]
        )
        return dict(answer["services"][0])

    def _scale(self, decision: Decision) -> None:
        assert decision.new_capacity is not None and decision.alarm is not None
        started = datetime.now(UTC)
        cause = (
            f"monitor alarm {self.alarm_names[decision.alarm]} in state ALARM triggered policy "
            f"{self.policy.name}"
        )
        common: dict[str, Any] = {
            "resource_id": self.target.resource_id,
            "description": f"Setting desired count to {decision.new_capacity}.",
            "cause": cause,
            "start": started,
            "service_namespace": self.target.service_namespace,
            "scalable_dimension": self.target.scalable_dimension,
        }
        logger.info(
            "autoscaling %s: %s (metric %.1f, target %.1f): desired count %d -> %d",
            self.target.resource_id,
            decision.reason,
            decision.metric or 0.0,
            self.policy.target_value,
            decision.capacity,
            decision.new_capacity,
        )
        try:
            self.clients("ecs").update_service(
                cluster=self.target.cluster,
                service=self.target.service,
                desiredCount=decision.new_capacity,
            )
        except Exception as exc:  # noqa: BLE001 - a Failed activity says what happened
            item = activity(**common, status="Failed", message=str(exc), end=datetime.now(UTC))
            logger.warning("autoscaling %s failed: %s", self.target.resource_id, exc)
        else:
            message = (
                f"Successfully set desired count to {decision.new_capacity}. "
                "Change successfully fulfilled by ecs."
            )
            item = activity(**common, status="Successful", message=message, end=datetime.now(UTC))
            self.tracker.scaled(decision, self.clock())
        self._record(item)

    def _record(self, item: dict[str, Any]) -> None:
        import httpx  # noqa: PLC0415 - the endpoint imports this package; httpx only here

        try:
            response = httpx.post(
                self.endpoint_url + RECORD_PATH, content=json.dumps(item), timeout=10.0
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("could not record the scaling activity on the endpoint: %s", exc)

    # -- thread -----------------------------------------------------------------------------
    def start(self) -> Autoscaler:
        """Evaluate once a period on a daemon thread until :meth:`stop`."""
        self._loop.start()
        return self

    def stop(self) -> None:
        """Stop evaluating."""
        self._loop.stop()
