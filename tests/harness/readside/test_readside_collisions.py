"""read_collisions over fake CloudWatch Logs and SQS clients (the real path: tests/e2e)."""

from __future__ import annotations

import json
from typing import Any

from harness.readside import read_collisions

COLLISION = {
    "level": "ERROR",
    "message": "read key (...) holds transaction 'tx_a'; INSERT of transaction 'tx_b' not applied",
    "collision": "read-key",
    "user_id": "u1",
    "created_at": 1704067200000,
    "transaction_id": "tx_b",
    "holder_transaction_id": "tx_a",
    "sequence_number": "200",
    "event_name": "INSERT",
}
REMOVE = {**COLLISION, "level": "WARNING", "event_name": "REMOVE", "sequence_number": "300"}


def emf(*values: float) -> dict[str, Any]:
    return {
        "_aws": {"CloudWatchMetrics": [{"Namespace": "QueryServiceV3", "Metrics": []}]},
        "ReadKeyCollisions": list(values) if len(values) > 1 else values[0],
    }


class Logs:
    def __init__(self, *messages: Any) -> None:
        self.events = [
            {"timestamp": 1000 + n, "message": m if isinstance(m, str) else json.dumps(m)}
            for n, m in enumerate(messages)
        ]
        self.asked: dict[str, Any] = {}

    def get_paginator(self, name: str) -> Any:
        assert name == "filter_log_events"
        logs = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Any:
                logs.asked = kwargs
                half = len(logs.events) // 2
                return [{"events": logs.events[:half]}, {"events": logs.events[half:]}]

        return Paginator()


class Sqs:
    def __init__(self, *ranges: tuple[str, str]) -> None:
        self.messages = [
            {
                "MessageId": f"m{n}",
                "Body": json.dumps(
                    {"DDBStreamBatchInfo": {"startSequenceNumber": a, "endSequenceNumber": b}}
                ),
            }
            for n, (a, b) in enumerate(ranges)
        ]
        self.messages.append({"MessageId": "other", "Body": "not a stream record"})
        self.receives: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 (boto3's spelling)
        return {"QueueUrl": f"http://q/{QueueName}"}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives.append(kwargs)
        start = (len(self.receives) - 1) * 10
        return {"Messages": self.messages[start : start + 10]}


def test_read_collisions_collects_lines_metric_and_queue() -> None:
    logs = Logs("START RequestId: x", emf(0), COLLISION, emf(0, 1), REMOVE, emf(0, 1), "{bad")
    sqs = Sqs(("100", "250"), ("400", "500"))

    report = read_collisions(logs, sqs, since_ms=5)

    assert logs.asked == {"logGroupName": "/aws/lambda/stream-processor", "startTime": 5}
    assert [(line.event_name, line.in_dlq) for line in report.lines] == [
        ("INSERT", True),
        ("REMOVE", False),
    ]
    assert report.lines[0].holder_transaction_id == "tx_a"
    assert report.transactions == {"tx_b"}  # a REMOVE is logged, not reported as failed
    assert (report.metric_sum, report.metric_datapoints) == (2.0, 5)
    assert report.dlq_ranges == [(100, 250), (400, 500)]
    assert all(r["VisibilityTimeout"] == 0 for r in sqs.receives)  # messages stay in the queue


def test_read_collisions_without_queue_leaves_in_dlq_unknown() -> None:
    report = read_collisions(Logs(COLLISION))

    assert [line.in_dlq for line in report.lines] == [None]
    assert report.to_json()["transactions_not_applied"] == ["tx_b"]


def test_read_collisions_nothing_logged_is_an_empty_report() -> None:
    report = read_collisions(Logs(emf(0), emf(0)), Sqs())

    assert report.lines == [] and report.metric_sum == 0 and report.metric_datapoints == 2
