"""BatchDelivery alone (no stream, no moto): when a batch's on-failure request id is made."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from harness.streams import batch
from harness.streams.batch import BatchDelivery, PollerConfig, PollerTimings, StreamRecord
from harness.streams.types import OnFailureRecord

ARN = "arn:aws:dynamodb:ap-southeast-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


@dataclass
class Result:
    status_code: int = 200
    payload: bytes = b"null"
    function_error: str | None = None


class Invoker:
    def __init__(self, error: str | None) -> None:
        self.error = error

    def invoke(self, name: str, payload: bytes, **_: Any) -> Result:
        return Result(function_error=self.error)


class Destination:
    def __init__(self) -> None:
        self.sent: list[OnFailureRecord] = []

    def send(self, destination_arn: str, record: OnFailureRecord) -> None:
        self.sent.append(record)


def _records(count: int) -> list[StreamRecord]:
    now = time.time()
    return [StreamRecord.from_stream({"eventID": str(i), "eventName": "INSERT", "dynamodb": {
        "ApproximateCreationDateTime": now, "Keys": {"k": {"S": str(i)}},
        "SequenceNumber": str(100 + i), "SizeBytes": 10}}, ARN, "ap-southeast-1")
        for i in range(count)]  # fmt: skip


def _delivery(error: str | None, destination: Destination, **settings: Any) -> BatchDelivery:
    config = PollerConfig(uuid="u", function_name="fn", function_arn="arn:fn",
                          event_source_arn=ARN, starting_position="TRIM_HORIZON",
                          on_failure_destination="arn:aws:sqs:ap-southeast-1:1:q", **settings)
    return BatchDelivery(config=lambda: config, invoker=Invoker(error), destination=destination,
                         shard_id="s", stop=threading.Event(), clock=time.time,
                         timings=PollerTimings(retry_base_s=0.0, retry_max_s=0.0),
                         report=lambda _: None)


def test_a_batch_that_succeeds_never_makes_a_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_uuid() -> uuid.UUID:
        raise AssertionError("uuid4 on the delivery path")

    monkeypatch.setattr(batch.uuid, "uuid4", no_uuid)
    done: list[StreamRecord] = []
    _delivery(None, Destination()).deliver(_records(3), done.append)
    assert [r.sequence_number for r in done] == ["102"]


def test_the_halves_of_a_split_batch_report_one_request_id() -> None:
    destination = Destination()
    _delivery("Unhandled", destination, bisect_batch_on_function_error=True,
              maximum_retry_attempts=0).deliver(_records(2), lambda _: None)
    ids = {message["requestContext"]["requestId"] for message in destination.sent}
    assert len(destination.sent) == 2 and len(ids) == 1
    assert uuid.UUID(ids.pop()).version == 4
