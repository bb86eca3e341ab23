"""Read-key collisions as the stream processor reported them: log lines, metric, on-failure queue.

The stream processor (lambdas/stream_processor) writes, per collision, a JSON log line with
``"collision": "read-key"`` and, per invocation, an EMF line with the ``ReadKeyCollisions``
metric, both into ``/aws/lambda/stream-processor``; an image it could not apply ends, after the
mapping's retries, in the on-failure queue as a ``DDBStreamBatchInfo`` sequence range. This module
reads all three back with ``FilterLogEvents`` and ``ReceiveMessage`` (``VisibilityTimeout=0``: the
messages stay in the queue for whoever handles them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "COLLISION_METRIC",
    "DLQ_NAME",
    "LOG_GROUP",
    "CollisionLine",
    "CollisionReport",
    "read_collisions",
]

LOG_GROUP = "/aws/lambda/stream-processor"
DLQ_NAME = "stream-processor-dlq"
COLLISION_METRIC = "ReadKeyCollisions"
#: ReceiveMessage answers at most 10 messages; this many receives bound a peek at the queue.
_MAX_RECEIVES = 20


@dataclass(frozen=True)
class CollisionLine:
    """One collision log line: an image of ``transaction_id`` whose read key another holds."""

    timestamp_ms: int
    level: str
    event_name: str
    user_id: str
    created_at: int
    transaction_id: str
    holder_transaction_id: str
    sequence_number: str
    message: str
    #: the image was reported as failed (INSERT/MODIFY); a REMOVE is only logged
    reported_failed: bool
    #: its sequence number lies in an on-failure message's range (None: queue not read)
    in_dlq: bool | None = None


@dataclass
class CollisionReport:
    """The collisions seen since a time, the metric's sum, and the on-failure queue."""

    lines: list[CollisionLine] = field(default_factory=list)
    metric_sum: float = 0.0
    metric_datapoints: int = 0
    dlq_ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def transactions(self) -> set[str]:
        """Transactions that have an image not applied because of a collision."""
        return {line.transaction_id for line in self.lines if line.reported_failed}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``query-harness collisions --json`` prints)."""
        return {
            "collisions": [asdict(line) for line in self.lines],
            "transactions_not_applied": sorted(self.transactions),
            "metric": {"name": COLLISION_METRIC, "sum": self.metric_sum,
                       "datapoints": self.metric_datapoints},
            "dlq_ranges": [[str(start), str(end)] for start, end in self.dlq_ranges],
        }


def _json_lines(logs: Any, log_group: str, since_ms: int) -> list[tuple[int, dict[str, Any]]]:
    found = []
    paginator = logs.get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=log_group, startTime=since_ms):
        for event in page.get("events", []):
            text = event.get("message", "").strip()
            if not text.startswith("{"):
                continue
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if isinstance(document, dict):
                found.append((int(event.get("timestamp", 0)), document))
    return found


def _metric_values(document: dict[str, Any]) -> list[float]:
    if "_aws" not in document or COLLISION_METRIC not in document:
        return []
    value = document[COLLISION_METRIC]
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, int | float)]


def _line(timestamp: int, document: dict[str, Any]) -> CollisionLine | None:
    if document.get("collision") != "read-key":
        return None
    event_name = str(document.get("event_name", ""))
    return CollisionLine(
        timestamp_ms=timestamp,
        level=str(document.get("level", "")),
        event_name=event_name,
        user_id=str(document.get("user_id", "")),
        created_at=int(document.get("created_at", 0)),
        transaction_id=str(document.get("transaction_id", "")),
        holder_transaction_id=str(document.get("holder_transaction_id", "")),
        sequence_number=str(document.get("sequence_number", "")),
        message=str(document.get("message", "")),
        reported_failed=event_name != "REMOVE",
    )


def _dlq_ranges(sqs: Any, queue_name: str) -> list[tuple[int, int]]:
    """The sequence ranges of the on-failure messages, left in the queue."""
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    seen: dict[str, tuple[int, int]] = {}
    for _ in range(_MAX_RECEIVES):
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in seen]
        if not new:
            break
        for message in new:
            try:
                info = json.loads(message["Body"])["DDBStreamBatchInfo"]
                seen[message["MessageId"]] = (
                    int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
                )
            except (ValueError, KeyError, TypeError):
                seen[message["MessageId"]] = (-1, -1)  # not a stream on-failure record
    return sorted(r for r in seen.values() if r != (-1, -1))


def read_collisions(
    logs: Any,
    sqs: Any | None = None,
    *,
    since_ms: int = 0,
    log_group: str = LOG_GROUP,
    queue_name: str = DLQ_NAME,
) -> CollisionReport:
    """Read the collisions logged since `since_ms`, the metric's sum and (with `sqs`) the queue."""
    report = CollisionReport()
    for timestamp, document in _json_lines(logs, log_group, since_ms):
        values = _metric_values(document)
        report.metric_sum += sum(values)
        report.metric_datapoints += len(values)
        line = _line(timestamp, document)
        if line is not None:
            report.lines.append(line)
    if sqs is not None:
        report.dlq_ranges = _dlq_ranges(sqs, queue_name)
        report.lines = [
            CollisionLine(**{**asdict(line), "in_dlq": _covered(line, report.dlq_ranges)})
            for line in report.lines
        ]
    return report


def _covered(line: CollisionLine, ranges: list[tuple[int, int]]) -> bool:
    if not line.sequence_number.isdigit():
        return False
    number = int(line.sequence_number)
    return any(start <= number <= end for start, end in ranges)
