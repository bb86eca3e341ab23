"""stream-processor against moto, fed with the canonical sample events of contracts/events."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.stream_processor import read_table as read_table_module
from lambdas.stream_processor.handler import lambda_handler
from tests.events import load_event
from tests.lambdas.conftest import stream_batch

TX_001 = ("test_user_001", 1704067200000)
TX_002 = ("test_user_001", 1704067260000)
TX_003 = ("test_user_001", 1703894400000)


def sequence_of(name: str) -> str:
    return load_event(f"stream/{name}.event")["Records"][0]["dynamodb"]["SequenceNumber"]


def test_stream_processor_insert_with_ap_id_writes_every_field(dynamodb, read_items):
    response = lambda_handler(stream_batch("insert-ap-id"), None)

    assert response == load_event("stream/insert-ap-id.batch-response")
    item = read_items()[TX_001]
    assert item == {
        "user_id": "test_user_001",
        "created_at": Decimal(1704067200000),
        "transaction_id": "tx_001",
        "marketing_id": "campaign_2024_new_year",
        "ap_id": "mobile-app-001",
        "notification_title": "Happy New Year 2024!",
        "status": "SENT",
        "platform": "IOS",
        "source_sequence": sequence_of("insert-ap-id").zfill(40),
    }


def test_stream_processor_failed_insert_keeps_error_msg_and_ap_id(dynamodb, read_items):
    lambda_handler(stream_batch("insert-failed"), None)

    item = read_items()[TX_002]
    assert item["status"] == "FAILED"
    assert item["error_msg"] == "InvalidRegistration: the push subscription has expired"
    assert item["ap_id"] == "web-portal-001"
    assert "device_token" not in item and "payload" not in item


def test_stream_processor_pre_v3_insert_omits_absent_attributes(dynamodb, read_items):
    lambda_handler(stream_batch("insert-pre-v3"), None)

    item = read_items()[TX_003]
    assert "ap_id" not in item and "marketing_id" not in item and "error_msg" not in item
    assert item["transaction_id"] == "tx_003"


def test_stream_processor_modify_updates_status(dynamodb, read_items):
    response = lambda_handler(stream_batch("insert-ap-id", "modify-delivered"), None)

    assert response == {"batchItemFailures": []}
    item = read_items()[TX_001]
    assert item["status"] == "DELIVERED"
    assert item["ap_id"] == "mobile-app-001"
    assert item["source_sequence"] == sequence_of("modify-delivered").zfill(40)


def test_stream_processor_remove_deletes_read_item(dynamodb, read_items):
    lambda_handler(stream_batch("insert-pre-v3"), None)
    assert TX_003 in read_items()

    response = lambda_handler(stream_batch("remove"), None)

    assert response == {"batchItemFailures": []}
    assert TX_003 not in read_items()


def test_stream_processor_remove_of_absent_item_succeeds(dynamodb, read_items):
    assert lambda_handler(stream_batch("remove"), None) == {"batchItemFailures": []}
    assert read_items() == {}


def test_stream_processor_redelivered_batch_is_idempotent(dynamodb, read_items):
    batch = stream_batch("insert-ap-id", "insert-failed", "modify-delivered", "insert-pre-v3")
    lambda_handler(batch, None)
    first = read_items()

    assert lambda_handler(batch, None) == {"batchItemFailures": []}
    assert read_items() == first
    assert first[TX_001]["status"] == "DELIVERED"


def test_stream_processor_older_image_after_newer_does_not_overwrite(dynamodb, read_items):
    lambda_handler(stream_batch("modify-delivered"), None)

    response = lambda_handler(stream_batch("insert-ap-id"), None)

    assert response == {"batchItemFailures": []}
    item = read_items()[TX_001]
    assert item["status"] == "DELIVERED"
    assert item["source_sequence"] == sequence_of("modify-delivered").zfill(40)


def test_stream_processor_older_remove_after_newer_insert_keeps_item(dynamodb, read_items):
    event = stream_batch("remove")
    event["Records"][0]["dynamodb"]["SequenceNumber"] = "1"
    lambda_handler(stream_batch("insert-pre-v3"), None)

    assert lambda_handler(event, None) == {"batchItemFailures": []}
    assert TX_003 in read_items()


def test_stream_processor_sequence_numbers_of_different_length_compare_numerically(
    dynamodb, read_items
):
    newer = stream_batch("modify-delivered")
    newer["Records"][0]["dynamodb"]["SequenceNumber"] = "100"
    older = stream_batch("insert-ap-id")
    older["Records"][0]["dynamodb"]["SequenceNumber"] = "99"
    lambda_handler(newer, None)

    lambda_handler(older, None)

    assert read_items()[TX_001]["status"] == "DELIVERED"


def test_stream_processor_malformed_record_reported_while_others_land(dynamodb, read_items):
    batch = stream_batch("insert-ap-id", "invalid-missing-user-id", "insert-failed")

    response = lambda_handler(batch, None)

    assert response == load_event("stream/invalid-missing-user-id.batch-response")
    assert set(read_items()) == {TX_001, TX_002}


def test_stream_processor_malformed_record_logs_sequence_and_problem(dynamodb, caplog):
    lambda_handler(stream_batch("invalid-missing-user-id"), None)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR and hasattr(r, "problem")]
    assert len(errors) == 1
    assert errors[0].sequence_number == sequence_of("invalid-missing-user-id")
    assert errors[0].problem == "NewImage user_id: Field required"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("status", {"S": "BOUNCED"}),
        ("platform", {"S": "BLACKBERRY"}),
        ("created_at", {"S": "yesterday"}),
        ("user_id", {"N": "42"}),
        ("user_id", {"S": ""}),
        ("notification_title", {"BOOL": True}),
    ],
)
def test_stream_processor_wrong_type_record_is_reported(dynamodb, read_items, attribute, value):
    event = stream_batch("insert-ap-id")
    event["Records"][0]["dynamodb"]["NewImage"][attribute] = value

    response = lambda_handler(event, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": sequence_of("insert-ap-id")}]}
    assert read_items() == {}


def test_stream_processor_record_without_new_image_is_reported(dynamodb):
    event = stream_batch("insert-ap-id")
    del event["Records"][0]["dynamodb"]["NewImage"]

    response = lambda_handler(event, None)

    assert response["batchItemFailures"] == [{"itemIdentifier": sequence_of("insert-ap-id")}]


def test_stream_processor_whole_batch_failure_returns_every_record(dynamodb):
    event = stream_batch("invalid-missing-user-id", "invalid-missing-user-id")
    event["Records"][1]["dynamodb"]["SequenceNumber"] = "4421584500000000017450439007"

    response = lambda_handler(event, None)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": "4421584500000000017450439006"},
            {"itemIdentifier": "4421584500000000017450439007"},
        ]
    }


def test_stream_processor_modify_moving_user_deletes_old_read_key(dynamodb, read_items):
    lambda_handler(stream_batch("insert-ap-id"), None)
    event = stream_batch("modify-delivered")
    event["Records"][0]["dynamodb"]["NewImage"]["user_id"] = {"S": "test_user_002"}

    assert lambda_handler(event, None) == {"batchItemFailures": []}

    assert set(read_items()) == {("test_user_002", 1704067200000)}


def test_stream_processor_dynamodb_error_reports_record(dynamodb, monkeypatch):
    monkeypatch.setenv("NOTIFICATION_TABLE_NAME", "no-such-table")

    response = lambda_handler(stream_batch("insert-ap-id", "insert-failed"), None)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        sequence_of("insert-ap-id"),
        sequence_of("insert-failed"),
    ]


def test_stream_processor_condition_failure_only_is_swallowed(dynamodb, monkeypatch):
    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "PutItem",
        )

    class Client:
        put_item = staticmethod(throttled)

    monkeypatch.setattr(read_table_module, "dynamodb_client", lambda: Client())

    response = lambda_handler(stream_batch("insert-ap-id"), None)

    assert response == {"batchItemFailures": [{"itemIdentifier": sequence_of("insert-ap-id")}]}
