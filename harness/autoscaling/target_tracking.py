"""Target tracking as Application Auto Scaling evaluates it (pure decisions, no I/O).

A target-tracking policy owns two CloudWatch alarms on its metric (checked in AWS's Application
Auto Scaling user guide, "How target tracking scaling works", and shared/reference):

- the high alarm: ``HIGH_DATAPOINTS`` (3) consecutive one-minute datapoints above the target;
- the low alarm: ``LOW_DATAPOINTS`` (15) consecutive one-minute datapoints below 90 % of the
  target. ``DisableScaleIn`` removes the low alarm's action.

While an alarm is in ALARM it invokes the policy at each evaluation. The new capacity is
proportional: ``ceil(capacity * metric / target)``, clamped to the scalable target's min/max.
Cooldowns (``ScaleOutCooldown``, ``ScaleInCooldown``, from the end of an activity):

- during the scale-out cooldown, the capacity the initiating scale-out added counts as part of
  the next one: the next scale-out is computed from the capacity before it, and happens only if
  it asks for more than is already set;
- during the scale-in cooldown no scale-in starts; a scale-out may, at once, and it ends the
  scale-in cooldown.
Missing datapoints leave an alarm out of ALARM (too little data to decide).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "HIGH_DATAPOINTS",
    "LOW_DATAPOINTS",
    "LOW_RATIO",
    "Decision",
    "ScalableTarget",
    "TargetTracker",
    "TargetTrackingPolicy",
]

HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
LOW_RATIO = 0.9
DEFAULT_ECS_COOLDOWN_S = 300  # ECS services: 300 s in each direction when the policy omits it


@dataclass(frozen=True)
class ScalableTarget:
    """An ``aws_appautoscaling_target``."""

    resource_id: str  # service/<cluster>/<service>
    min_capacity: int
    max_capacity: int
    service_namespace: str = "ecs"
    scalable_dimension: str = "ecs:service:DesiredCount"
    #: its ``SuspendedState``: dynamic scaling out / in suspended (RegisterScalableTarget)
    scale_out_suspended: bool = False
    scale_in_suspended: bool = False

    @property
    def cluster(self) -> str:
        return self.resource_id.split("/")[1]

    @property
    def service(self) -> str:
        return self.resource_id.split("/")[2]

    def clamp(self, capacity: int) -> int:
        return max(self.min_capacity, min(self.max_capacity, capacity))


@dataclass(frozen=True)
class TargetTrackingPolicy:
    """An ``aws_appautoscaling_policy`` of type TargetTrackingScaling."""

    name: str
    target_value: float
    metric_type: str = "ECSServiceAverageCPUUtilization"
    scale_out_cooldown_s: float = DEFAULT_ECS_COOLDOWN_S
    scale_in_cooldown_s: float = DEFAULT_ECS_COOLDOWN_S
    disable_scale_in: bool = False


@dataclass(frozen=True)
class Decision:
    """What one evaluation decided: a new capacity (or None) and why."""

    alarm: str | None  # "high", "low" or None (OK or insufficient data)
    capacity: int
    new_capacity: int | None
    metric: float | None
    reason: str


class TargetTracker:
    """The two alarms and the cooldowns of one policy on one scalable target.

    ``time_scale`` K divides the cooldowns (the datapoints are the caller's: one per period).
    """

    def __init__(
        self, target: ScalableTarget, policy: TargetTrackingPolicy, *, time_scale: float = 1.0
    ) -> None:
        self.time_scale = time_scale
        self.reconfigure(target, policy)
        self._scale_out_until = float("-inf")
        self._scale_in_until = float("-inf")
        self._scale_out_base: int | None = None  # capacity before the initiating scale-out

    def reconfigure(self, target: ScalableTarget, policy: TargetTrackingPolicy) -> None:
        """Use a target's and a policy's new settings from the next evaluation on (a cooldown
        already running keeps its end)."""
        self.target = target
        self.policy = policy
        self.scale_out_cooldown_s = policy.scale_out_cooldown_s / self.time_scale
        self.scale_in_cooldown_s = policy.scale_in_cooldown_s / self.time_scale

    def alarm(self, datapoints: Sequence[float | None]) -> str | None:
        """The alarm in ALARM ("high", "low") or None for the newest datapoints (oldest first, one per period)."""
        target = self.policy.target_value
        # Target tracking's alarms treat missing data as `missing` (CloudWatch's default): a
        # missing datapoint is not considered, and the alarm looks back further for present ones.
        present = [v for v in datapoints if v is not None]
        high = present[-HIGH_DATAPOINTS:]
        if len(high) == HIGH_DATAPOINTS and all(v > target for v in high):
            return "high"
        low = present[-LOW_DATAPOINTS:]
        if len(low) == LOW_DATAPOINTS and all(v < LOW_RATIO * target for v in low):
            return "low"
        return None

    def evaluate(self, datapoints: Sequence[float | None], capacity: int, now: float) -> Decision:
        """Decide from the datapoints and the current capacity at time ``now`` (seconds)."""
        alarm = self.alarm(datapoints)
        metric = next((v for v in reversed(datapoints) if v is not None), None)
        if alarm is None or metric is None:
            return Decision(alarm, capacity, None, metric, "no alarm in ALARM")
        ratio = metric / self.policy.target_value
        if alarm == "high":
            in_cooldown = now < self._scale_out_until and self._scale_out_base is not None
            base = self._scale_out_base if in_cooldown and self._scale_out_base else capacity
            wanted = self.target.clamp(math.ceil(base * ratio))
            if wanted <= capacity:
                why = "in scale-out cooldown" if in_cooldown else "at the maximum capacity"
                return Decision(alarm, capacity, None, metric, why)
            if self.target.scale_out_suspended:
                return Decision(alarm, capacity, None, metric, "dynamic scale-out is suspended")
            return Decision(alarm, capacity, wanted, metric, "metric above the target")
        if self.policy.disable_scale_in:
            return Decision(alarm, capacity, None, metric, "scale-in is disabled")
        if now < self._scale_in_until:
            return Decision(alarm, capacity, None, metric, "in scale-in cooldown")
        wanted = self.target.clamp(math.ceil(capacity * ratio))
        if wanted >= capacity:
            return Decision(alarm, capacity, None, metric, "at the minimum capacity")
        if self.target.scale_in_suspended:
            return Decision(alarm, capacity, None, metric, "dynamic scale-in is suspended")
        return Decision(alarm, capacity, wanted, metric, "metric below 90 % of the target")

    def scaled(self, decision: Decision, now: float) -> None:
        """Start the cooldown of a scaling activity that completed at ``now``."""
        if decision.new_capacity is None:
            return
        if decision.new_capacity > decision.capacity:
            if now >= self._scale_out_until or self._scale_out_base is None:
                self._scale_out_base = decision.capacity
            self._scale_out_until = now + self.scale_out_cooldown_s
            self._scale_in_until = float("-inf")  # a scale-out ends the scale-in cooldown
        else:
            self._scale_in_until = now + self.scale_in_cooldown_s
            self._scale_out_base = None
