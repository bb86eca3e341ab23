"""CloudWatch's retention on the endpoint: expired metric data points and log events are dropped
(at the stack's time scale), fresh ones and groups without a retention policy are kept."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.aws import retention

#: 15 days of AWS time in 15 local seconds; one retention day in a second
SCALE = retention.METRIC_RETENTION_S / 15


@pytest.fixture
def scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time runs SCALE times faster and every put sweeps."""
    monkeypatch.setenv("HARNESS_TIME_SCALE", str(SCALE))
    monkeypatch.setattr(retention, "SWEEP_S", 0.0)


def _values(cloudwatch: Any, namespace: str, start: float) -> list[float]:
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="M",
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(time.time() + 60, UTC),
        Period=1,
        Statistics=["Maximum"],
    )
    return sorted(p["Maximum"] for p in answer["Datapoints"])


def test_metric_data_points_expire_after_fifteen_scaled_days(
    aws_client_factory: Callable[..., Any], scaled: None
) -> None:
    cloudwatch = aws_client_factory("cloudwatch")
    namespace, now = f"Test/{uuid.uuid4().hex[:8]}", time.time()

    def put(value: float, at: float) -> None:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "M", "Value": value, "Timestamp": at, "Unit": "Count"}],
        )

    put(1.0, now - 30)  # 30 local seconds: a month of AWS time ago
    put(2.0, now - 5)
    put(3.0, now)
    assert _values(cloudwatch, namespace, now - 60) == [2.0, 3.0]


def test_metric_data_points_are_kept_fifteen_days_at_real_time(
    aws_client_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "SWEEP_S", 0.0)
    cloudwatch = aws_client_factory("cloudwatch")
    namespace, now = f"Test/{uuid.uuid4().hex[:8]}", time.time()
    for value, at in ((1.0, now - 3600), (2.0, now)):
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "M", "Value": value, "Timestamp": at, "Unit": "Count"}],
        )
    assert _values(cloudwatch, namespace, now - 7200) == [1.0, 2.0]


def test_log_events_expire_after_the_groups_retention(
    aws_client_factory: Callable[..., Any], scaled: None
) -> None:
    logs = aws_client_factory("logs")
    kept, expiring = f"/test/keep-{uuid.uuid4().hex[:8]}", f"/test/ret-{uuid.uuid4().hex[:8]}"
    for group in (kept, expiring):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_retention_policy(logGroupName=expiring, retentionInDays=1)  # one local second
    now_ms = int(time.time() * 1000)
    for group in (kept, expiring):
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now_ms - 5000, "message": "old"}],
        )
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now_ms, "message": "new"}],
        )

    def messages(group: str) -> list[str]:
        events = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
        return [e["message"] for e in events["events"]]

    assert messages(expiring) == ["new"]
    assert messages(kept) == ["old", "new"]  # no retention policy: never expire
