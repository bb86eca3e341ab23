"""query-lambda against moto: the canonical payloads and results, paging, errors."""

from __future__ import annotations

import base64
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.query.handler import lambda_handler
from lambdas.query.next_token import encode_next_token
from lambdas.stream_processor.handler import lambda_handler as stream_handler
from tests.events import load_event
from tests.lambdas.conftest import stream_batch


def context_with_request_id(request_id: str | None) -> Any:
    custom = None if request_id is None else {"request_id": request_id}
    return SimpleNamespace(
        aws_request_id="lambda-request-1",
        client_context=SimpleNamespace(custom=custom),
    )


def put_read_items(dynamodb: Any, user_id: str, count: int, marketing_id: str = "m1") -> None:
    for n in range(count):
        dynamodb.put_item(
            TableName="notification-records",
            Item={
                "user_id": {"S": user_id},
                "created_at": {"N": str(1_700_000_000_000 + n)},
                "transaction_id": {"S": f"tx_{n:03d}"},
                "marketing_id": {"S": marketing_id},
                "notification_title": {"S": f"title {n}"},
                "status": {"S": "FAILED" if n % 2 else "SENT"},
                "platform": {"S": "ANDROID"},
                "source_sequence": {"S": str(n).zfill(40)},
            },
        )


@pytest.mark.parametrize("name", ["user", "marketing", "fail"])
def test_query_canonical_request_returns_canonical_response(seeded, name):
    result = lambda_handler(load_event(f"query/{name}.request"), context_with_request_id("r-1"))

    assert result == load_event(f"query/{name}.response")


def test_query_user_newest_first_with_ap_id_and_null_for_pre_v3(seeded):
    result = lambda_handler({"query_type": "user", "id": "test_user_001"}, None)

    assert [r["transaction_id"] for r in result["records"]] == ["tx_002", "tx_001", "tx_003"]
    by_tx = {r["transaction_id"]: r for r in result["records"]}
    assert by_tx["tx_001"]["ap_id"] == "mobile-app-001"
    assert by_tx["tx_003"]["ap_id"] is None
    assert all("source_sequence" not in r for r in result["records"])


def test_query_fail_returns_only_failed_records(dynamodb):
    stream_handler(stream_batch("insert-ap-id", "insert-failed"), None)

    assert lambda_handler({"query_type": "fail", "id": "tx_001"}, None)["records"] == []
    failed = lambda_handler({"query_type": "fail", "id": "tx_002"}, None)["records"]
    assert [(r["transaction_id"], r["status"]) for r in failed] == [("tx_002", "FAILED")]


def test_query_after_modify_shows_delivered_status(dynamodb):
    stream_handler(stream_batch("insert-ap-id", "modify-delivered"), None)

    records = lambda_handler({"query_type": "user", "id": "test_user_001"}, None)["records"]

    assert [(r["transaction_id"], r["status"]) for r in records] == [("tx_001", "DELIVERED")]


def test_query_unknown_id_returns_empty_page(seeded):
    result = lambda_handler({"query_type": "user", "id": "nobody"}, None)

    assert result == {"ok": True, "records": [], "count": 0, "next_token": None}


@pytest.mark.parametrize(
    ("query_type", "identifier"), [("user", "u-paged"), ("marketing", "m-paged")]
)
def test_query_paging_walks_every_record_once_newest_first(dynamodb, query_type, identifier):
    put_read_items(dynamodb, "u-paged", 7, marketing_id="m-paged")
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        payload = {"query_type": query_type, "id": identifier, "limit": 3, "next_token": token}
        result = lambda_handler(payload, None)
        assert result["ok"] is True and result["count"] == len(result["records"]) <= 3
        seen.extend(r["created_at"] for r in result["records"])
        pages += 1
        token = result["next_token"]
        if token is None:
            break

    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 7
    assert pages >= 3


def test_query_fail_paging_walks_every_failed_record(dynamodb):
    for n in range(5):
        dynamodb.put_item(
            TableName="notification-records",
            Item={
                "user_id": {"S": f"user-{n}"},
                "created_at": {"N": str(1_700_000_000_000 + n)},
                "transaction_id": {"S": "tx_many"},
                "notification_title": {"S": "t"},
                "status": {"S": "FAILED"},
                "platform": {"S": "IOS"},
            },
        )
    users, token = [], None
    while True:
        page = lambda_handler(
            {"query_type": "fail", "id": "tx_many", "limit": 2, "next_token": token}, None
        )
        users.extend(r["user_id"] for r in page["records"])
        token = page["next_token"]
        if token is None:
            break

    assert sorted(users) == [f"user-{n}" for n in range(5)]


def test_query_token_for_other_id_is_rejected(dynamodb):
    put_read_items(dynamodb, "u-a", 3)
    token = lambda_handler({"query_type": "user", "id": "u-a", "limit": 1}, None)["next_token"]
    assert token is not None

    result = lambda_handler({"query_type": "user", "id": "u-b", "next_token": token}, None)

    assert result["ok"] is False
    assert result["error"]["code"] == "InvalidNextToken"
    assert result["error"]["field"] == "next_token"


def test_query_token_for_other_query_type_is_rejected(dynamodb):
    put_read_items(dynamodb, "u-a", 3, marketing_id="u-a")
    token = lambda_handler({"query_type": "user", "id": "u-a", "limit": 1}, None)["next_token"]

    result = lambda_handler({"query_type": "marketing", "id": "u-a", "next_token": token}, None)

    assert result["error"]["code"] == "InvalidNextToken"


def forged(document: Any) -> str:
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "!!!",
        forged([1, 2]),
        forged({"v": 1, "q": "user", "id": "u-a"}),
        forged({"v": 2, "q": "user", "id": "u-a", "k": {}}),
        forged({"v": 1, "q": "user", "id": "u-a", "k": {"user_id": {"S": "u-a"}}}),
        forged(
            {
                "v": 1,
                "q": "user",
                "id": "u-a",
                "k": {"user_id": {"S": "u-b"}, "created_at": {"N": "1"}},
            }
        ),
        forged(
            {
                "v": 1,
                "q": "user",
                "id": "u-a",
                "k": {"user_id": {"S": "u-a"}, "created_at": {"S": "1"}},
            }
        ),
        forged(
            {
                "v": 1,
                "q": "user",
                "id": "u-a",
                "k": {"user_id": {"S": "u-a"}, "created_at": {"N": "1e5"}},
            }
        ),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_query_garbled_token_is_invalid_next_token(dynamodb, token):
    result = lambda_handler({"query_type": "user", "id": "u-a", "next_token": token}, None)

    assert result["ok"] is False
    assert result["error"]["code"] == "InvalidNextToken"


def test_query_canonical_invalid_next_token_sample(seeded):
    result = lambda_handler(load_event("query/invalid-next-token.request"), None)

    assert result == load_event("query/invalid-next-token.response")


def test_query_old_failure_name_is_invalid_request(seeded):
    result = lambda_handler(load_event("query/invalid-failure.request"), None)

    assert result == load_event("query/invalid-failure.response")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"query_type": "user"}, "id"),
        ({"id": "x"}, "query_type"),
        ({"query_type": "user", "id": ""}, "id"),
        ({"query_type": "user", "id": " padded"}, "id"),
        ({"query_type": "user", "id": "padded\n"}, "id"),
        ({"query_type": "user", "id": "x" * 1025}, "id"),
        ({"query_type": "user", "id": "é" * 513}, "id"),
        ({"query_type": "user", "id": 7}, "id"),
        ({"query_type": "user", "id": "x", "limit": 0}, "limit"),
        ({"query_type": "user", "id": "x", "limit": 101}, "limit"),
        ({"query_type": "user", "id": "x", "limit": "5"}, "limit"),
        ({"query_type": "user", "id": "x", "limit": True}, "limit"),
        ({"query_type": "user", "id": "x", "next_token": 5}, "next_token"),
        ({"query_type": "user", "id": "x", "user_id": "x"}, "user_id"),
        ({"query_type": "failed", "id": "x"}, "query_type"),
        ([], None),
        (None, None),
        ("user", None),
    ],
)
def test_query_bad_payload_is_invalid_request_naming_field(dynamodb, payload, field):
    result = lambda_handler(payload, None)

    assert result["ok"] is False
    assert result["error"]["code"] == "InvalidRequest"
    assert result["error"]["field"] == field
    assert result["error"]["message"]


def test_query_id_of_exactly_1024_bytes_is_accepted(dynamodb):
    result = lambda_handler({"query_type": "user", "id": "é" * 512}, None)

    assert result["ok"] is True


def test_query_infrastructure_error_raises(dynamodb, monkeypatch):
    monkeypatch.setenv("NOTIFICATION_TABLE_NAME", "no-such-table")

    with pytest.raises(ClientError) as raised:
        lambda_handler({"query_type": "user", "id": "test_user_001"}, None)

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_query_logs_carry_request_id_from_client_context(seeded, caplog):
    caplog.set_level(logging.INFO)

    lambda_handler({"query_type": "user", "id": "test_user_001"}, context_with_request_id("req-42"))

    answered = [r for r in caplog.records if r.getMessage() == "query answered"]
    assert answered and answered[-1].count == 3


def test_query_correlation_id_comes_from_client_context(seeded):
    from lambdas.query import handler

    handler.lambda_handler({"query_type": "user", "id": "x"}, context_with_request_id("req-42"))
    assert handler.logger.get_correlation_id() == "req-42"

    handler.lambda_handler({"query_type": "user", "id": "x"}, context_with_request_id(None))
    assert handler.logger.get_correlation_id() is None


def test_query_encoded_token_round_trips_through_handler(dynamodb):
    put_read_items(dynamodb, "u-a", 2)
    key = {"user_id": {"S": "u-a"}, "created_at": {"N": str(1_700_000_000_001)}}
    token = encode_next_token("user", "u-a", key)

    result = lambda_handler({"query_type": "user", "id": "u-a", "next_token": token}, None)

    assert [r["created_at"] for r in result["records"]] == [1_700_000_000_000]
