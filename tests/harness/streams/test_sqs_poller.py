"""SQS event source mappings: delivery with AWS's semantics, against moto's SQS."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from esm_fakes import ACCOUNT, REGION, FakeResult, wait_until

from harness.streams.batch import PollerTimings
from harness.streams.mappings import EventSourceMappings
from harness.streams.sqs_poller import failed_message_ids

FAST = PollerTimings(fallback_poll_s=0.1, retry_base_s=0.01, retry_max_s=0.05)
Handler = Callable[[dict[str, Any]], Any]


class SqsRuntime:
    """LambdaRuntime-like: one Python handler per function; records every SQS batch."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.batches: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    def invoke(self, name: str, payload: bytes, *, invocation_type: str = "RequestResponse",
               client_context: Any = None, tail: bool = False) -> FakeResult:
        handler = self.handlers[name.rsplit(":function:", 1)[-1]]
        if invocation_type == "DryRun":
            return FakeResult(204, b"")
        event = json.loads(payload)
        with self.lock:
            self.batches.append(event["Records"])
        try:
            answer = handler(event)
        except Exception as exc:  # the function failed
            body = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return FakeResult(200, json.dumps(body).encode(), "Unhandled")
        return FakeResult(200, json.dumps(answer).encode())

    def bodies(self) -> list[list[str]]:
        with self.lock:
            return [[record["body"] for record in batch] for batch in self.batches]


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


@pytest.fixture
def runtime() -> SqsRuntime:
    return SqsRuntime()


@pytest.fixture
def esm(moto_url: str, runtime: SqsRuntime) -> Iterator[EventSourceMappings]:
    mappings = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                                   runtime=runtime, timings=FAST)
    mappings.start()
    yield mappings
    mappings.stop()


_names = iter(range(10**6))


def queue_factory(sqs: Any, **attributes: str) -> tuple[str, str]:
    """A new queue: (url, arn)."""
    name = f"q{next(_names)}-{id(sqs) % 1000}"
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def create(esm: EventSourceMappings, runtime: SqsRuntime, arn: str, handler: Handler,
           **settings: Any) -> dict[str, Any]:
    runtime.handlers["fn"] = handler
    status, body = esm.handle("POST", "/2015-03-31/event-source-mappings", {}, json.dumps(
        {"FunctionName": "fn", "EventSourceArn": arn, **settings}).encode())
    assert status == 202, body
    return body


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]))


def test_sqs_messages_are_delivered_as_aws_records_and_deleted(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    url, arn = queue_factory(sqs)
    answer = create(esm, runtime, arn, lambda event: None)
    assert answer["BatchSize"] == 10 and "StartingPosition" not in answer
    assert "LastProcessingResult" not in answer and answer["FunctionResponseTypes"] == []
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "test"}})
    wait_until(lambda: sum(len(b) for b in runtime.bodies()) == 5)
    wait_until(lambda: counts(sqs, url) == (0, 0))
    record = runtime.batches[0][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == REGION and record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "test", "stringListValues": [], "binaryListValues": [],
        "dataType": "String"}
    assert sorted(body for batch in runtime.bodies() for body in batch) == [
        f"m{i}" for i in range(5)]


def test_sqs_batch_size_caps_each_invocation(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    url, arn = queue_factory(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": f"m{i}"} for i in range(7)])
    create(esm, runtime, arn, lambda event: None, BatchSize=2)
    wait_until(lambda: sum(len(b) for b in runtime.bodies()) == 7)
    assert max(len(batch) for batch in runtime.bodies()) <= 2


def test_sqs_batching_window_gathers_messages_into_one_invocation(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    url, arn = queue_factory(sqs)
    create(esm, runtime, arn, lambda event: None, BatchSize=50,
           MaximumBatchingWindowInSeconds=3)
    sqs.send_message(QueueUrl=url, MessageBody="first")
    wait_until(lambda: counts(sqs, url)[1] == 1)  # received: the window is open
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "second"}, {"Id": "2", "MessageBody": "third"}])
    wait_until(lambda: runtime.bodies() != [])
    assert runtime.bodies() == [["first", "second", "third"]]


def test_sqs_function_error_redelivers_after_visibility_timeout_then_redrives_to_dlq(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    dlq_url, dlq_arn = queue_factory(sqs)
    url, arn = queue_factory(sqs, VisibilityTimeout="1", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))

    def fail(event: dict[str, Any]) -> None:
        raise RuntimeError("poison")

    create(esm, runtime, arn, fail)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    wait_until(lambda: counts(sqs, dlq_url)[0] == 1, timeout=30)
    receive_counts = [batch[0]["attributes"]["ApproximateReceiveCount"]
                      for batch in runtime.batches]
    assert receive_counts == ["1", "2"]
    moved = sqs.receive_message(QueueUrl=dlq_url)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


def test_sqs_partial_batch_response_redelivers_only_the_failed_message(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    url, arn = queue_factory(sqs, VisibilityTimeout="1")
    seen: set[str] = set()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            if record["body"] == "b" and "b" not in seen:
                failures.append({"itemIdentifier": record["messageId"]})
            seen.add(record["body"])
        return {"batchItemFailures": failures}

    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": body, "MessageBody": body} for body in ("a", "b", "c")])
    create(esm, runtime, arn, handler, FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_until(lambda: sum(len(b) for b in runtime.bodies()) == 4, timeout=30)
    wait_until(lambda: counts(sqs, url) == (0, 0))
    delivered = [body for batch in runtime.bodies() for body in batch]
    assert sorted(delivered) == ["a", "b", "b", "c"]
    assert runtime.batches[-1][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_failed_message_ids_follows_aws_partial_batch_rules() -> None:
    batch: list[Any] = [{"messageId": "m1"}, {"messageId": "m2"}]
    assert failed_message_ids(b"null", batch) is None
    assert failed_message_ids(b'{"batchItemFailures": []}', batch) is None
    assert failed_message_ids(b'"done"', batch) is None
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}',
                              batch) == {"m2"}
    whole = {"m1", "m2"}
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": "x"}]}',
                              batch) == whole
    assert failed_message_ids(b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
                              batch) == whole
    assert failed_message_ids(b'{"batchItemFailures": [{"wrong": "m1"}]}', batch) == whole


def test_sqs_disable_stops_delivery_and_enable_resumes(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    url, arn = queue_factory(sqs)
    mapping = create(esm, runtime, arn, lambda event: None)["UUID"]
    path = f"/2015-03-31/event-source-mappings/{mapping}"
    # AWS: an update while Creating is a ResourceInUseException
    wait_until(lambda: esm.handle("GET", path, {}, b"")[1]["State"] == "Enabled")
    status, body = esm.handle("PUT", path, {}, b'{"Enabled": false}')
    assert status == 202 and body["State"] == "Disabling"
    wait_until(lambda: esm.handle("GET", path, {}, b"")[1]["State"] == "Disabled")
    sqs.send_message(QueueUrl=url, MessageBody="later")
    assert runtime.bodies() == [] and counts(sqs, url) == (1, 0)
    esm.handle("PUT", path, {}, b'{"Enabled": true}')
    wait_until(lambda: runtime.bodies() == [["later"]])


def test_sqs_fifo_messages_arrive_in_group_order(
    esm: EventSourceMappings, runtime: SqsRuntime, sqs: Any
) -> None:
    fifo_url = sqs.create_queue(QueueName=f"f{next(_names)}.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    fifo_arn = sqs.get_queue_attributes(QueueUrl=fifo_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    for i in range(6):
        sqs.send_message(QueueUrl=fifo_url, MessageBody=f"m{i}", MessageGroupId="g1")
    create(esm, runtime, fifo_arn, lambda event: None, BatchSize=4)
    wait_until(lambda: sum(len(b) for b in runtime.bodies()) == 6)
    assert [body for batch in runtime.bodies() for body in batch] == [f"m{i}" for i in range(6)]
    assert runtime.batches[0][0]["attributes"]["MessageGroupId"] == "g1"
    wait_until(lambda: counts(sqs, fifo_url) == (0, 0))
