"""Every source type AWS accepts, through the whole control plane; mappings per region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from esm_fakes import ACCOUNT, REGION, FakeRuntime

from harness.streams.mappings import EventSourceMappings

BASE = "/2015-03-31/event-source-mappings"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka"
STORED_ONLY = {
    "kinesis": {"EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks",
                "StartingPosition": "LATEST"},
    "msk": {"EventSourceArn": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/orders/abcd-1234-ef",
            "StartingPosition": "TRIM_HORIZON", "Topics": ["orders"]},
    "self-managed-kafka": {
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["k1:9092"]}},
        "Topics": ["orders"], "StartingPosition": "LATEST",
        "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET}]},
    "mq": {"EventSourceArn": f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:orders:b-1234-abcd",
           "Queues": ["orders"],
           "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET}]},
    "documentdb": {"EventSourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:docs",
                   "StartingPosition": "LATEST",
                   "DocumentDBEventSourceConfig": {"DatabaseName": "db",
                                                   "CollectionName": "c"}},
}
LABELS = {"kinesis": "Kinesis", "msk": "Amazon MSK", "self-managed-kafka": "self-managed Apache "
          "Kafka", "mq": "Amazon MQ", "documentdb": "DocumentDB"}


@pytest.fixture
def esm() -> Iterator[EventSourceMappings]:
    runtime = FakeRuntime()
    runtime.register("fn", lambda event: None)
    mappings = EventSourceMappings(endpoint_url="http://127.0.0.1:9", region=REGION,
                                   account_id=ACCOUNT, runtime=runtime)
    mappings.start()  # nothing here is polled: no endpoint is needed
    yield mappings
    mappings.stop()


def call(esm: EventSourceMappings, method: str, path: str = "", body: Any = None,
         region: str | None = None, **query: str) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode() if body is not None else b""
    return esm.handle(method, BASE + path, query, raw, region=region)


@pytest.mark.parametrize("kind", sorted(STORED_ONLY))
def test_stored_only_source_goes_through_the_whole_control_plane(
    esm: EventSourceMappings, kind: str
) -> None:
    status, created = call(esm, "POST", body={"FunctionName": "fn", **STORED_ONLY[kind]})
    assert status == 202, created
    for key, value in STORED_ONLY[kind].items():
        assert created[key] == value
    assert created["BatchSize"] == 100 and created["State"] == "Creating"
    assert created["LastProcessingResult"].startswith("PROBLEM: not polled")
    assert LABELS[kind] in created["LastProcessingResult"]
    path = f"/{created['UUID']}"
    status, got = call(esm, "GET", path)
    assert status == 200 and got["State"] == "Enabled"
    status, updated = call(esm, "PUT", path, {"BatchSize": 50, "Enabled": False})
    assert status == 202 and updated["BatchSize"] == 50
    assert call(esm, "GET", path)[1]["State"] == "Disabled"
    listed = call(esm, "GET", FunctionName="fn")[1]["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [created["UUID"]]
    status, deleted = call(esm, "DELETE", path)
    assert status == 202 and deleted["State"] == "Deleting"
    assert call(esm, "GET", path)[0] == 404


@pytest.mark.parametrize(
    ("kind", "changes", "needle"),
    [
        ("kinesis", {"StartingPosition": None}, "StartingPosition is required"),
        ("kinesis", {"StartingPosition": "AT_TIMESTAMP"}, "StartingPositionTimestamp"),
        ("kinesis", {"ScalingConfig": {"MaximumConcurrency": 5}}, "does not apply to Kinesis"),
        ("msk", {"Topics": None}, "Topics is required"),
        ("msk", {"Topics": ["a", "b"]}, "exactly one"),
        ("msk", {"ParallelizationFactor": 2}, "does not apply to Amazon MSK"),
        ("self-managed-kafka", {"SelfManagedEventSource": {"Endpoints": {}}},
         "KAFKA_BOOTSTRAP_SERVERS"),
        ("mq", {"StartingPosition": "LATEST"}, "take no StartingPosition"),
        ("mq", {"SourceAccessConfigurations": None}, "SourceAccessConfigurations is required"),
        ("mq", {"SourceAccessConfigurations": [{"Type": "BASIC_AUTH"}]}, "{Type, URI}"),
        ("documentdb", {"DocumentDBEventSourceConfig": {"CollectionName": "c"}},
         "DatabaseName is required"),
        ("documentdb", {"BatchSize": 10001}, "batchSize"),
    ],
)
def test_source_specific_validation_is_400(
    esm: EventSourceMappings, kind: str, changes: dict[str, Any], needle: str
) -> None:
    request = {"FunctionName": "fn", **STORED_ONLY[kind], **changes}
    status, body = call(esm, "POST", body={k: v for k, v in request.items() if v is not None})
    assert status == 400 and body["__type"] == "InvalidParameterValueException", body
    assert needle in body["message"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"StartingPosition": "LATEST"}, "take no StartingPosition"),
        ({"BatchSize": 11}, "greater than 0 if maximum batch size is greater than 10"),
        ({"ScalingConfig": {"MaximumConcurrency": 1}}, "between 2 and 1000"),
        ({"ParallelizationFactor": 2}, "does not apply to SQS"),
        ({"BisectBatchOnFunctionError": True}, "does not apply to SQS"),
    ],
)
def test_sqs_validation_is_400(esm: EventSourceMappings, changes: dict[str, Any],
                               needle: str) -> None:
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"
    status, body = call(esm, "POST", body={"FunctionName": "fn", "EventSourceArn": queue,
                                           **changes})
    assert status == 400 and needle in body["message"], body


def test_sqs_fifo_batch_size_is_at_most_10(esm: EventSourceMappings) -> None:
    fifo = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q.fifo"
    request = {"FunctionName": "fn", "EventSourceArn": fifo, "BatchSize": 11,
               "MaximumBatchingWindowInSeconds": 1}
    status, body = call(esm, "POST", body=request)
    assert status == 400 and "batchSize" in body["message"]
    request["BatchSize"] = 10
    assert call(esm, "POST", body=request)[0] == 202


def test_mappings_belong_to_the_region_of_the_request(esm: EventSourceMappings) -> None:
    east_queue = "arn:aws:sqs:us-east-1:123456789012:q"
    body = {"FunctionName": "fn", "EventSourceArn": east_queue, "Enabled": False}
    status, created = call(esm, "POST", body=body, region="us-east-1")
    assert status == 202, created
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert created["EventSourceMappingArn"].startswith("arn:aws:lambda:us-east-1:")
    path = f"/{created['UUID']}"
    assert call(esm, "GET", path, region="us-east-1")[0] == 200
    assert call(esm, "GET", path)[0] == 404  # another region has its own mappings
    assert call(esm, "GET")[1]["EventSourceMappings"] == []
    assert len(call(esm, "GET", region="us-east-1")[1]["EventSourceMappings"]) == 1
    assert call(esm, "PUT", path, {"BatchSize": 5}, region="us-east-1")[0] == 202
    assert call(esm, "DELETE", path)[0] == 404
    assert call(esm, "DELETE", path, region="us-east-1")[0] == 202
    # a function ARN or queue of another region is refused, as AWS does
    status, refused = call(esm, "POST", body=body)
    assert status == 400 and "region" in refused["message"]
