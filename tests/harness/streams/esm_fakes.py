"""Fakes and helpers for the event-source-mapping tests: scripted runtime, tables, waits, and an
in-memory DynamoDB Streams (shards, shard ends, scripted read errors)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "ap-southeast-1"
ACCOUNT = "123456789012"


class ResourceNotFound(Exception):
    """The function does not exist (the runtime's error)."""


class TooManyRequests(Exception):
    """Throttled (the runtime's error)."""


class FunctionCrashed(Exception):
    """Raise from a handler to simulate the worker process dying mid-batch."""


@dataclass
class FakeResult:
    status_code: int
    payload: bytes
    function_error: str | None = None
    log_result: str | None = None
    executed_version: str = "$LATEST"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


Handler = Callable[[dict[str, Any]], Any]


class FakeRuntime:
    """LambdaRuntime-like: runs a Python handler per function name and records every batch."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.batches: dict[str, list[list[str]]] = {}
        self.lock = threading.Lock()

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler
        self.batches[name] = []

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        client_context: Any = None,
        tail: bool = False,
    ) -> FakeResult:
        name = name.rsplit(":function:", 1)[-1]  # the mappings invoke by ARN
        if name not in self.handlers:
            raise ResourceNotFound(f"Function not found: {name}")
        if invocation_type == "DryRun":
            return FakeResult(204, b"")
        event = json.loads(payload)
        with self.lock:
            self.batches[name].append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        try:
            answer = self.handlers[name](event)
        except TooManyRequests:
            raise
        except FunctionCrashed:
            body = {
                "errorType": "Runtime.ExitError",
                "errorMessage": "RequestId: x Error: Runtime exited with error: signal: killed",
            }
            return FakeResult(200, json.dumps(body).encode(), "Unhandled")
        except Exception as exc:
            body = {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}
            return FakeResult(200, json.dumps(body).encode(), "Unhandled")
        return FakeResult(200, json.dumps(answer).encode())

    def invocations(self, name: str) -> list[list[str]]:
        with self.lock:
            return [list(batch) for batch in self.batches[name]]

    def times_seen(self, name: str, sequence_number: str) -> int:
        return sum(batch.count(sequence_number) for batch in self.invocations(name))


def clients(endpoint_url: str) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    config = Config(retries={"max_attempts": 2}, max_pool_connections=32)
    return {
        name: session.client(name, endpoint_url=endpoint_url, config=config)
        for name in ("dynamodb", "dynamodbstreams", "sqs")
    }


def create_source_table(dynamodb: Any, name: str) -> str:
    """A table with a NEW_AND_OLD_IMAGES stream; returns the stream ARN."""
    answer = dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(answer["TableDescription"]["LatestStreamArn"])


def create_target_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )


def create_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(url), str(arn["Attributes"]["QueueArn"])


def scan_keys(dynamodb: Any, table: str) -> set[str]:
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["pk"]["S"] for item in items}


def drain_queue(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            yield json.loads(message["Body"])


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)


def put(dynamodb: Any, table: str, key: str, **attributes: str) -> None:
    item = {"pk": {"S": key}} | {name: {"S": value} for name, value in attributes.items()}
    dynamodb.put_item(TableName=table, Item=item)


def copy_handler(dynamodb: Any, target: str) -> Handler:
    """A function that copies each record's new image into ``target`` (deletes on REMOVE)."""

    def handler(event: dict[str, Any]) -> None:
        for record in event["Records"]:
            data = record["dynamodb"]
            if record["eventName"] == "REMOVE":
                dynamodb.delete_item(TableName=target, Key=data["Keys"])
            else:
                dynamodb.put_item(TableName=target, Item=data["NewImage"])

    return handler


# -- an in-memory DynamoDB Streams -----------------------------------------------------------


class FakeStreams:
    """DescribeStream/GetShardIterator/GetRecords over in-memory shards; counts the calls."""

    def __init__(self, shards: dict[str, dict[str, Any]]) -> None:
        self.shards = shards
        self.iterator_calls: list[tuple[str, str]] = []
        self.get_records_calls = 0
        self.fail_next: list[str] = []

    def describe_stream(self, StreamArn: str, **_: Any) -> dict[str, Any]:
        described = []
        for shard_id, shard in self.shards.items():
            entry: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": {}}
            if shard.get("parent"):
                entry["ParentShardId"] = shard["parent"]
            described.append(entry)
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": described}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: str | None = None) -> dict[str, Any]:
        self.iterator_calls.append((ShardId, ShardIteratorType))
        records = self.shards[ShardId]["records"]
        position = {"TRIM_HORIZON": 0, "LATEST": len(records)}.get(ShardIteratorType)
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            position = next(i + 1 for i, r in enumerate(records)
                            if r["dynamodb"]["SequenceNumber"] == SequenceNumber)
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:

        self.get_records_calls += 1
        if self.fail_next:
            code = self.fail_next.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "GetRecords")
        shard_id, position = ShardIterator.split("|")
        shard = self.shards[shard_id]
        start = int(position)
        records = shard["records"][start:start + Limit]
        end = start + len(records)
        answer: dict[str, Any] = {"Records": records}
        if not (shard.get("closed") and end >= len(shard["records"])):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer


def raw_record(seq: int) -> dict[str, Any]:
    return {"eventID": f"e{seq}", "eventName": "INSERT", "eventVersion": "1.0",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": datetime.now(UTC),
                         "Keys": {"pk": {"S": f"k{seq}"}}, "NewImage": {"pk": {"S": f"k{seq}"}},
                         "SequenceNumber": f"{seq:021d}", "SizeBytes": 20,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}
