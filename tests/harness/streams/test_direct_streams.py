"""The pollers' in-process DynamoDB Streams client on the embedded endpoint: same answers as
boto3's over HTTP (in wire form), AWS's error codes as ClientError; its lean GetRecords answers
as moto's handler does, errors included; and a poller that is caught up reads again only when
woken (no empty GetRecords after each batch)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from esm_fakes import FakeRuntime, FakeStreams, raw_record, wait_until

from harness.aws.moto_app import HttpRequest
from harness.aws.stream_patches import get_records_answer
from harness.streams.batch import PollerConfig, PollerTimings
from harness.streams.clients import DirectStreamsClient
from harness.streams.poller import CheckpointStore, StreamPoller

REGION, ACCOUNT = "ap-southeast-1", "123456789012"
FUNCTION = "fn"


@pytest.fixture
def stream(aws_client_factory: Any) -> str:
    dynamodb = aws_client_factory("dynamodb")
    name = f"direct-{uuid.uuid4().hex[:8]}"
    arn = dynamodb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "a"}, "blob": {"B": b"\x00\xff"}})
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "b"}, "n": {"N": "1"}})
    return str(arn)


def _read_all(client: Any, arn: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    description = client.describe_stream(StreamArn=arn)["StreamDescription"]
    shard = description["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return description, client.get_records(ShardIterator=iterator, Limit=100)["Records"]


def test_direct_client_answers_as_boto3_over_http(endpoint: Any, aws_client_factory: Any,
                                                  stream: str) -> None:
    direct = DirectStreamsClient(endpoint._streams_request, REGION, ACCOUNT)
    ours_description, ours = _read_all(direct, stream)
    http_description, http = _read_all(aws_client_factory("dynamodbstreams"), stream)
    assert ours_description["Shards"] == http_description["Shards"]
    assert [r["dynamodb"]["SequenceNumber"] for r in ours] == [
        r["dynamodb"]["SequenceNumber"] for r in http]
    assert [r["dynamodb"]["Keys"] for r in ours] == [r["dynamodb"]["Keys"] for r in http]
    # the wire form: epoch seconds and base64 binary, as Lambda's event carries them
    first = ours[0]["dynamodb"]
    assert first["ApproximateCreationDateTime"] == pytest.approx(
        http[0]["dynamodb"]["ApproximateCreationDateTime"].timestamp(), abs=1)
    assert base64.b64decode(first["NewImage"]["blob"]["B"]) == b"\x00\xff"


def test_direct_client_raises_aws_error_codes(endpoint: Any, stream: str) -> None:
    direct = DirectStreamsClient(endpoint._streams_request, REGION, ACCOUNT)
    with pytest.raises(ClientError) as missing:
        direct.describe_stream(StreamArn=stream.replace("direct-", "missing-"))
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as bad:
        direct.get_records(ShardIterator="not-an-iterator", Limit=10)
    assert bad.value.response["Error"]["Code"] in {"ValidationException",
                                                    "ExpiredIteratorException"}


def _handler_answer(endpoint: Any, body: bytes) -> tuple[int, dict[str, Any]]:
    """GetRecords through the endpoint's request handler and moto's DynamoDBStreamsHandler."""
    headers = [("content-type", "application/x-amz-json-1.0"),
               ("x-amz-target", "DynamoDBStreams_20120810.GetRecords"),
               ("authorization", f"AWS4-HMAC-SHA256 Credential=test/20000101/{REGION}/dynamodb/"
                                 "aws4_request, SignedHeaders=host, Signature=0")]
    response = endpoint._app.handle(HttpRequest("POST", "/", b"/", b"", headers, body))
    return response.status, json.loads(response.body)


def _iterator(endpoint: Any, arn: str) -> str:
    direct = DirectStreamsClient(endpoint._streams_request, REGION, ACCOUNT)
    shard = direct.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return str(direct.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"])


def test_lean_get_records_answers_as_moto_handler(endpoint: Any, stream: str) -> None:
    ours = get_records_answer(json.dumps({"ShardIterator": _iterator(endpoint, stream),
                                          "Limit": 100}).encode(), REGION, ACCOUNT)
    theirs = _handler_answer(endpoint, json.dumps({"ShardIterator": _iterator(endpoint, stream),
                                                    "Limit": 100}).encode())
    assert ours[0] == theirs[0] == 200
    assert len(ours[1]["Records"]) == 2  # a binary attribute and a datetime among them
    assert ours[1]["Records"] == theirs[1]["Records"]
    assert ours[1]["NextShardIterator"] != theirs[1]["NextShardIterator"]  # each read's own
    # a drained shard: the same iterator back from both (stream_patches' reuse)
    drained = ours[1]["NextShardIterator"]
    empty = json.dumps({"ShardIterator": drained}).encode()
    assert get_records_answer(empty, REGION, ACCOUNT) == (200, {"NextShardIterator": drained,
                                                                "Records": []})
    assert _handler_answer(endpoint, empty) == get_records_answer(empty, REGION, ACCOUNT)


@pytest.mark.parametrize("request_body", [
    {"ShardIterator": "not-an-iterator"},
    {"ShardIterator": "arn:aws:dynamodb:ap-southeast-1:123456789012:table/t/stream/x|1|gone"},
    {"ShardIterator": "not-an-iterator", "Limit": 0},
    {"Limit": 10},
    {"ShardIterator": ["not", "a", "string"]},
])
def test_lean_get_records_errors_as_moto_handler(endpoint: Any, request_body: Any) -> None:
    body = json.dumps(request_body).encode()
    status, document = get_records_answer(body, REGION, ACCOUNT)
    assert status == 400
    assert (status, document) == _handler_answer(endpoint, body)


def test_direct_client_reads_lean_get_records_as_before(endpoint: Any, stream: str) -> None:
    direct = DirectStreamsClient(endpoint._streams_request, REGION, ACCOUNT)
    records = direct.get_records(ShardIterator=_iterator(endpoint, stream), Limit=1)
    assert [r["dynamodb"]["Keys"] for r in records["Records"]] == [{"pk": {"S": "a"}}]
    assert records["Records"][0]["eventSourceARN"] == stream
    with pytest.raises(ClientError) as expired:
        direct.get_records(ShardIterator=stream + "|1|gone", Limit=1)
    assert expired.value.response["Error"]["Code"] == "ExpiredIteratorException"


def test_caught_up_poller_reads_again_only_when_woken() -> None:
    runtime = FakeRuntime()
    streams = FakeStreams({"shard-1": {"records": [raw_record(i) for i in (1, 2, 3)]}})
    runtime.register(FUNCTION, lambda event: None)
    config = PollerConfig(uuid="u-2", function_name=FUNCTION,
                          function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
                          event_source_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/x",
                          starting_position="TRIM_HORIZON", batch_size=10)
    poller = StreamPoller(config=lambda: config, streams_client=streams, invoker=runtime,
                          destination=None, checkpoints=CheckpointStore(),  # type: ignore[arg-type]
                          on_ready=lambda: None, on_stopped=lambda: None,
                          on_result=lambda _t: None,
                          timings=PollerTimings(fallback_poll_s=30.0, shard_rescan_s=30.0))
    poller.start()
    try:
        wait_until(lambda: sum(map(len, runtime.invocations(FUNCTION))) == 3)
        threading.Event().wait(0.3)  # an empty read after the batch would come in this time
        assert streams.get_records_calls == 1  # the one read that found the three records
        streams.shards["shard-1"]["records"].append(raw_record(4))
        poller.wake()
        wait_until(lambda: sum(map(len, runtime.invocations(FUNCTION))) == 4)
        assert streams.get_records_calls == 2
    finally:
        poller.request_stop()
        poller.join(5)
