"""CloudWatch's retention on moto's stores: metric data points and log events expire.

moto keeps every data point PutMetricData sends and every event PutLogEvents sends for as long as
the endpoint runs. AWS does not:

- "Data points with a period of 60 seconds (1-minute) are available for 15 days" (CloudWatch API
  Reference, GetMetricStatistics: "Amazon CloudWatch retains metric data as follows"). The
  stack's publishers send one-minute periods of AWS time (``harness.cloudwatch.metrics``; shorter
  locally only because time runs K times faster), so a data point expires
  :data:`METRIC_RETENTION_S` / K after its timestamp.
- A log group's events expire after its ``retentionInDays`` (PutRetentionPolicy; "log events do
  not expire if they belong to log groups without a retention policy"): here ``retentionInDays``
  days / K after their timestamp. AWS deletes them "typically up to 72 hours" later and stops
  returning them once "marked for deletion"; here they are dropped at the next sweep.

K is the stack's one time factor (``HARNESS_TIME_SCALE``, :class:`harness.ecs.timescale.TimeScale`).
A sweep runs inside the call that adds data (PutMetricData, PutLogEvents on a group), at most
once per :data:`SWEEP_S`, under a lock those calls share. moto also lists every instance of its
models for its dashboard: CloudWatch's and CloudWatch Logs' instances are not listed (as
DynamoDB's are not, ``overhead_patches.UNTRACKED_SERVICES``), so an expired one is freed.

Deliberate difference: expired one-minute data points are dropped, not rolled up into the
5-minute (63 days) and 1-hour (455 days) aggregates AWS keeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from harness.aws.patches import wrap_method
from harness.ecs.timescale import TimeScale

__all__ = ["METRIC_RETENTION_S", "SWEEP_S", "apply", "expire_log_events", "expire_metric_data"]

DAY_S = 86_400.0
METRIC_RETENTION_S = 15 * DAY_S  # one-minute data points
SWEEP_S = 60.0  # local seconds between two sweeps of one store

_lock = threading.RLock()
#: the monotonic time of a store's last sweep, kept on the store (it goes with it on reset)
SWEPT_ATTRIBUTE = "_harness_last_sweep"


def _due(store: object) -> bool:
    now = time.monotonic()
    if now - store.__dict__.get(SWEPT_ATTRIBUTE, float("-inf")) < SWEEP_S:
        return False
    store.__dict__[SWEPT_ATTRIBUTE] = now
    return True


def _epoch(stamp: datetime) -> float:
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def metric_cutoff(now: float, scale: TimeScale) -> float:
    """The epoch second before which a metric data point has expired."""
    return now - scale.seconds(METRIC_RETENTION_S)


def expire_metric_data(backend: Any, now: float, scale: TimeScale) -> int:
    """Drop the backend's data points older than the retention; how many were dropped."""
    cutoff = metric_cutoff(now, scale)
    kept = [d for d in backend.metric_data if _epoch(d.timestamp) >= cutoff]
    dropped = len(backend.metric_data) - len(kept)
    if dropped:
        backend.metric_data = kept
    return dropped


def expire_log_events(group: Any, now: float, scale: TimeScale) -> int:
    """Drop the group's events older than its ``retentionInDays`` (none: keep every one)."""
    days = group.retention_in_days
    if not days:
        return 0
    cutoff_ms = (now - scale.seconds(float(days) * DAY_S)) * 1000
    dropped = 0
    for stream in list(group.streams.values()):
        kept = [e for e in stream.events if e.timestamp >= cutoff_ms]
        if len(kept) != len(stream.events):
            dropped += len(stream.events) - len(kept)
            stream.events = kept
    return dropped


def _sweeping(
    expire: Callable[[Any, float, TimeScale], int],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper maker: the call, then ``expire`` on its store when a sweep is due."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def put(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock:
                result = original(self, *args, **kwargs)
                if _due(self):
                    expire(self, time.time(), TimeScale.from_env())
                return result

        return put

    return make


def apply() -> None:
    """Wrap PutMetricData and PutLogEvents so they sweep their store now and then."""
    from moto.cloudwatch.models import CloudWatchBackend  # noqa: PLC0415
    from moto.logs.models import LogGroup  # noqa: PLC0415

    wrap_method(CloudWatchBackend, "put_metric_data", _sweeping(expire_metric_data))
    wrap_method(LogGroup, "put_log_events", _sweeping(expire_log_events))
