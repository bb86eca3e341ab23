"""The service's settings as ``infra/`` gives them, and what the scheduler needs of the ALB."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from harness.ecs.timescale import TimeScale

__all__ = ["ServiceConfig", "TargetGroup", "failure_threshold"]


class TargetGroup(Protocol):
    """What the controller needs of the load balancer (:class:`harness.ingress.load_balancer`)."""

    def target_health(self) -> dict[str, str]: ...

    def in_flight(self, url: str) -> int: ...

    def targets_changed(self) -> None: ...


@dataclass
class ServiceConfig:
    """The service's settings, as ``infra/`` defines them (AWS seconds, scaled here)."""

    cluster: str
    service_name: str
    region: str = "ap-southeast-1"
    account_id: str = "000000000000"
    desired_count: int = 2
    minimum_healthy_percent: int = 50
    maximum_percent: int = 200
    circuit_breaker: bool = True
    rollback: bool = True
    grace_period_s: float = 60.0
    deregistration_delay_s: float = 30.0
    stop_timeout_s: float = 30.0
    health_path: str = "/health"
    target_group_arn: str = "target-group"
    time_scale: TimeScale = field(default_factory=TimeScale)

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account_id}:cluster/{self.cluster}"

    @property
    def service_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account_id}:service/{self.cluster}/{self.service_name}"


def failure_threshold(desired: int) -> int:
    """ECS's circuit-breaker threshold: 0.5 × desired count, at least 3, at most 200."""
    return min(max(math.ceil(0.5 * desired), 3), 200)
