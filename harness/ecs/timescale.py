"""One time scale for every AWS period the harness emulates.

``K`` (``up --time-scale K``, the pytest option ``--harness-time-scale``, or the environment
variable ``HARNESS_TIME_SCALE``) divides AWS's durations: health-check intervals, the service's
health-check grace period, the target group's deregistration delay, and (ecs-metrics) metric
periods, alarm evaluation and scaling cooldowns. ``K = 1`` is AWS's real timing; ``K = 60``
makes a one-minute CloudWatch period last one second. Counts (thresholds, datapoints) never scale.

API (for every part that waits on an AWS period)::

    from harness.ecs.timescale import TimeScale
    scale = TimeScale.from_env()        # or TimeScale(30.0)
    scale.seconds(60)                   # -> 2.0 at K = 30: the local length of AWS's 60 s
    scale.to_aws(2.0)                   # -> 60.0: a local duration in AWS seconds
    scale.export()                      # {"HARNESS_TIME_SCALE": "30"} for child processes
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ENV_VAR", "MIN_CHECK_INTERVAL_S", "TimeScale"]

ENV_VAR = "HARNESS_TIME_SCALE"
#: health checks never run more often than this locally, whatever the scale
MIN_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True)
class TimeScale:
    """AWS seconds divided by ``factor`` give local seconds."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.factor) or self.factor <= 0:
            raise ValueError(f"the time scale must be a positive number, got {self.factor!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TimeScale:
        """The scale in ``HARNESS_TIME_SCALE`` (1 when unset); a bad value is a ValueError."""
        raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        if not raw:
            return cls()
        try:
            return cls(float(raw))
        except ValueError:
            raise ValueError(f"{ENV_VAR} must be a positive number, got {raw!r}") from None

    def seconds(self, aws_seconds: float) -> float:
        """The local duration of ``aws_seconds`` of AWS time."""
        return aws_seconds / self.factor

    def check_interval(self, aws_seconds: float) -> float:
        """The local interval of a health check AWS runs every ``aws_seconds``: scaled, but never
        below :data:`MIN_CHECK_INTERVAL_S`. Checks K times as often would cost the tasks K times
        the CPU, and the CPU metric the autoscaler tracks would read the checks, not the load."""
        return max(self.seconds(aws_seconds), MIN_CHECK_INTERVAL_S)

    def to_aws(self, local_seconds: float) -> float:
        """A local duration expressed in AWS seconds."""
        return local_seconds * self.factor

    def export(self) -> dict[str, str]:
        """The environment that hands this scale to a child process."""
        return {ENV_VAR: f"{self.factor:g}"}

    def describe(self) -> str:
        """One line for ``status`` and the logs."""
        if self.factor == 1:
            return "time scale 1 (AWS's real timing)"
        return f"time scale {self.factor:g} (AWS periods divided by {self.factor:g})"
