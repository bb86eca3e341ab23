"""MotoApp's direct DynamoDB dispatch answers exactly what moto's Flask app answers."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from harness.aws import patches as moto_patches
from harness.aws.moto_app import HttpRequest, HttpResponse, MotoApp

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/ap-southeast-1/dynamodb/"
    "aws4_request, SignedHeaders=host;x-amz-target, Signature=0"
)
#: headers that differ between any two answers (request id, date, a checksum of the body)
VOLATILE = {"x-amzn-requestid", "x-amz-crc32", "date"}


def _request(action: str, document: dict[str, Any], *, target: str | None = None) -> HttpRequest:
    body = json.dumps(document).encode()
    headers = [
        ("host", "127.0.0.1:4566"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target or f"DynamoDB_20120810.{action}"),
        ("authorization", AUTH),
        ("content-length", str(len(body))),
    ]
    return HttpRequest("POST", "/", b"/", b"", headers, body)


def _comparable(response: HttpResponse, table: str) -> tuple[int, list[tuple[str, str]], Any]:
    headers = sorted(
        (name.lower(), value) for name, value in response.headers if name.lower() not in VOLATILE
    )
    text = response.body.decode().replace(table, "TABLE")
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return response.status, headers, body


def _conversation(app: MotoApp, table: str) -> list[HttpResponse]:
    """Create a table, write, read (pages, errors) through ``app``; the answers."""
    key = {"user_id": {"S": "u1"}}
    query = {
        "TableName": table,
        "KeyConditionExpression": "#pk = :id",
        "ExpressionAttributeNames": {"#pk": "user_id"},
        "ExpressionAttributeValues": {":id": {"S": "u1"}},
        "ScanIndexForward": False,
        "Limit": 2,
    }
    created = app(
        _request(
            "CreateTable",
            {
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "user_id", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "user_id", "AttributeType": "S"},
                    {"AttributeName": "created_at", "AttributeType": "N"},
                ],
            },
        )
    )
    assert created.status == 200, created.body
    answers = [
        app(_request("PutItem", {"TableName": table, "Item": {**key, "created_at": {"N": n}}}))
        for n in ("1", "2", "3")
    ]
    answers += [
        app(_request("Query", query)),
        app(_request("GetItem", {"TableName": table, "Key": {**key, "created_at": {"N": "2"}}})),
        app(_request("Query", {**query, "KeyConditionExpression": "#pk = = :id"})),
        app(_request("GetItem", {"TableName": f"{table}-missing", "Key": key})),
        app(_request("Query", {"TableName": table})),
        app(_request("NoSuchAction", {"TableName": table})),
        app(HttpRequest("POST", "/", b"/", b"", _request("Query", {}).headers, b"{not json")),
    ]
    return answers


@pytest.fixture(scope="module")
def patched() -> None:
    moto_patches.apply()


@pytest.mark.usefixtures("patched")
def test_direct_dynamodb_answers_as_moto_flask_app_does() -> None:
    flask_table, direct_table = (f"t-{uuid.uuid4().hex[:10]}" for _ in range(2))
    via_flask = _conversation(MotoApp(direct_dynamodb=False), flask_table)
    via_direct = _conversation(MotoApp(), direct_table)

    assert [r.status for r in via_direct] == [200, 200, 200, 200, 200, 400, 400, 400, 500, 500]
    for flask_answer, direct_answer in zip(via_flask, via_direct, strict=True):
        assert _comparable(direct_answer, direct_table) == _comparable(flask_answer, flask_table)
    assert len(json.loads(via_direct[3].body)["Items"]) == 2


@pytest.mark.usefixtures("patched")
def test_direct_dynamodb_skips_the_dispatcher_but_nothing_else_does() -> None:
    class NoDispatcher:
        def __call__(self, environ: Any, start_response: Any) -> Any:
            raise AssertionError("the dispatcher was used")

    app = MotoApp()
    app._app = NoDispatcher()  # type: ignore[assignment]
    listed = app(_request("ListTables", {}))
    assert listed.status == 200 and "TableNames" in json.loads(listed.body)
    streams = app(_request("ListStreams", {}, target="DynamoDBStreams_20120810.ListStreams"))
    assert streams.status == 200 and "Streams" in json.loads(streams.body)
    # CORS and unsigned requests keep the Flask path
    with_origin = _request("ListTables", {})
    with_origin.headers.append(("origin", "http://example.com"))
    unsigned = _request("ListTables", {})
    unsigned.headers = [h for h in unsigned.headers if h[0] != "authorization"]
    for response in (app(with_origin), app(unsigned)):
        assert response.status == 500 and b"AssertionError" in response.body


def _streams_conversation(app: MotoApp, table: str) -> list[HttpResponse]:
    """A table with a stream, two writes, then a poller's calls (and bad ones) through ``app``."""
    created = app(_request("CreateTable", {
        "TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "user_id", "AttributeType": "S"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }))  # fmt: skip
    assert created.status == 200, created.body
    arn = json.loads(created.body)["TableDescription"]["LatestStreamArn"]
    for user in ("u1", "u2"):
        app(_request("PutItem", {"TableName": table, "Item": {"user_id": {"S": user}}}))

    def streams(action: str, document: dict[str, Any]) -> HttpResponse:
        return app(_request(action, document, target=f"DynamoDBStreams_20120810.{action}"))

    described = streams("DescribeStream", {"StreamArn": arn})
    shard = json.loads(described.body)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams("GetShardIterator", {"StreamArn": arn, "ShardId": shard,
                                            "ShardIteratorType": "TRIM_HORIZON"})
    records = streams("GetRecords", {"ShardIterator": json.loads(iterator.body)["ShardIterator"],
                                     "Limit": 1})
    return [described, records,
            streams("ListStreams", {"TableName": table}),
            streams("GetShardIterator", {"StreamArn": arn, "ShardId": shard,
                                         "ShardIteratorType": "SIDEWAYS"}),
            streams("GetRecords", {"ShardIterator": "not-an-iterator"}),
            streams("DescribeStream", {"StreamArn": arn + "-missing"})]


def _stable(response: HttpResponse, table: str) -> tuple[int, list[tuple[str, str]], Any]:
    """``_comparable`` without what differs between two streams: times, ids, iterators."""
    status, headers, body = _comparable(response, table)

    def scrub(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if key in ("eventID", "SequenceNumber", "StartingSequenceNumber", "StreamLabel", "SizeBytes",
                   "ShardId", "ApproximateCreationDateTime", "CreationRequestDateTime",
                   "ShardIterator", "NextShardIterator"):
            return "..."
        return re.sub(r"/stream/[^/|\"]+", "/stream/...", value) if isinstance(value, str) else value

    headers = [(k, v) for k, v in headers if k != "content-length"]
    return status, headers, scrub(body)


@pytest.mark.usefixtures("patched")
def test_direct_dynamodb_streams_answers_as_moto_flask_app_does() -> None:
    flask_table, direct_table = (f"t-{uuid.uuid4().hex[:10]}" for _ in range(2))
    via_flask = _streams_conversation(MotoApp(direct_dynamodb=False), flask_table)
    via_direct = _streams_conversation(MotoApp(), direct_table)

    assert [r.status for r in via_direct][:5] == [200, 200, 200, 400, 400]
    assert len(json.loads(via_direct[1].body)["Records"]) == 1
    for flask_answer, direct_answer in zip(via_flask, via_direct, strict=True):
        assert _stable(direct_answer, direct_table) == _stable(flask_answer, flask_table)


@pytest.mark.usefixtures("patched")
def test_an_html_5xx_from_moto_becomes_a_json_500_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.responses import DynamoHandler
    from werkzeug.exceptions import ServiceUnavailable

    def unavailable(self: Any) -> Any:
        raise ServiceUnavailable()  # werkzeug answers it with an HTML page

    monkeypatch.setattr(DynamoHandler, "list_tables", unavailable)
    for app in (MotoApp(), MotoApp(direct_dynamodb=False)):
        answer = app(_request("ListTables", {}))
        assert answer.status == 500
        assert (answer.header("content-type") or "").startswith("application/")
        assert json.loads(answer.body)["__type"].endswith("InternalServerError")
