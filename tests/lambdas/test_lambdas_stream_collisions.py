"""Issue 18: another transaction on the same read key (same user, same millisecond) against moto.

tx_001 (insert-ap-id) and tx_001b (insert-same-key-other-transaction) share test_user_001 and
created_at 1704067200000. Whichever reaches the read side first keeps the key; every image of
the other is reported (batchItemFailures, an ERROR line naming both, the ReadKeyCollisions
metric), and nothing of the holder is overwritten or deleted.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.stream_processor import read_table
from lambdas.stream_processor.handler import COLLISION_METRIC, METRICS_NAMESPACE, lambda_handler
from tests.events import load_event
from tests.lambdas.conftest import stream_batch

KEY = ("test_user_001", 1704067200000)
NO_FAILURES = {"batchItemFailures": []}


def sequence_of(name: str) -> str:
    return str(load_event(f"stream/{name}.event")["Records"][0]["dynamodb"]["SequenceNumber"])


def failed(*names: str) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": sequence_of(n)} for n in names]}


def collision_sum(out: str) -> float:
    """Sum of the ReadKeyCollisions values in the EMF lines powertools printed."""
    total = 0.0
    for line in out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        value = document[COLLISION_METRIC]
        total += sum(value) if isinstance(value, list) else value
    return total


def collision_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "collision", None) == "read-key"]


def remove_of_holder() -> dict[str, Any]:
    """A REMOVE of tx_001 (its last image is modify-delivered's NewImage), after all the above."""
    event = stream_batch("modify-delivered")
    record = event["Records"][0]
    record["eventName"] = "REMOVE"
    record["dynamodb"]["OldImage"] = record["dynamodb"].pop("NewImage")
    record["dynamodb"]["SequenceNumber"] = "4421584500000000017450439020"
    return event


def test_collision_second_transaction_reported_first_kept(dynamodb, read_items, capsys, caplog):
    lambda_handler(stream_batch("insert-ap-id"), None)

    response = lambda_handler(stream_batch("insert-same-key-other-transaction"), None)

    assert response == load_event("stream/insert-same-key-other-transaction.batch-response")
    item = read_items()[KEY]
    assert (item["transaction_id"], item["marketing_id"]) == ("tx_001", "campaign_2024_new_year")
    (line,) = collision_logs(caplog)
    assert line.levelno == logging.ERROR
    assert (line.transaction_id, line.holder_transaction_id) == ("tx_001b", "tx_001")
    assert "'tx_001'" in line.getMessage() and "'tx_001b'" in line.getMessage()
    assert line.sequence_number == sequence_of("insert-same-key-other-transaction")
    assert collision_sum(capsys.readouterr().out) == 1


def test_collision_in_one_batch_reports_only_the_second(dynamodb, read_items, capsys):
    batch = stream_batch("insert-ap-id", "insert-same-key-other-transaction", "insert-failed")

    response = lambda_handler(batch, None)

    assert response == failed("insert-same-key-other-transaction")
    assert read_items()[KEY]["transaction_id"] == "tx_001"
    assert len(read_items()) == 2
    assert collision_sum(capsys.readouterr().out) == 1


def test_collision_first_to_arrive_keeps_the_key(dynamodb, read_items):
    lambda_handler(stream_batch("insert-same-key-other-transaction"), None)

    assert lambda_handler(stream_batch("insert-ap-id"), None) == failed("insert-ap-id")
    assert read_items()[KEY]["transaction_id"] == "tx_001b"


def test_collision_redelivered_is_reported_again(dynamodb, read_items):
    batch = stream_batch("insert-ap-id", "insert-same-key-other-transaction")
    lambda_handler(batch, None)

    assert lambda_handler(batch, None) == failed("insert-same-key-other-transaction")
    assert read_items()[KEY]["transaction_id"] == "tx_001"


def test_collision_modify_of_other_transaction_reported_holder_unchanged(
    dynamodb, read_items, caplog
):
    lambda_handler(stream_batch("insert-ap-id", "insert-same-key-other-transaction"), None)
    before = read_items()[KEY]

    response = lambda_handler(stream_batch("modify-same-key-other-transaction"), None)

    assert response == failed("modify-same-key-other-transaction")
    assert read_items()[KEY] == before
    assert [r.event_name for r in collision_logs(caplog)] == ["INSERT", "MODIFY"]


def test_collision_modify_of_holder_is_applied(dynamodb, read_items, caplog):
    lambda_handler(stream_batch("insert-ap-id", "insert-same-key-other-transaction"), None)

    assert lambda_handler(stream_batch("modify-delivered"), None) == NO_FAILURES
    item = read_items()[KEY]
    assert (item["transaction_id"], item["status"]) == ("tx_001", "DELIVERED")
    assert len(collision_logs(caplog)) == 1


def test_collision_remove_of_other_transaction_keeps_holder_and_is_logged(
    dynamodb, read_items, capsys, caplog
):
    lambda_handler(stream_batch("insert-ap-id", "insert-same-key-other-transaction"), None)
    capsys.readouterr()
    caplog.clear()

    response = lambda_handler(stream_batch("remove-same-key-other-transaction"), None)

    assert response == NO_FAILURES  # nothing of tx_001b is on the read side: nothing to retry
    assert read_items()[KEY]["transaction_id"] == "tx_001"
    (line,) = collision_logs(caplog)
    assert line.levelno == logging.WARNING and line.event_name == "REMOVE"
    assert (line.transaction_id, line.holder_transaction_id) == ("tx_001b", "tx_001")
    assert collision_sum(capsys.readouterr().out) == 1


def test_collision_remove_of_holder_frees_the_key_for_the_other(dynamodb, read_items):
    lambda_handler(stream_batch("insert-ap-id", "insert-same-key-other-transaction"), None)

    assert lambda_handler(remove_of_holder(), None) == NO_FAILURES
    assert KEY not in read_items()
    assert lambda_handler(stream_batch("modify-same-key-other-transaction"), None) == NO_FAILURES
    item = read_items()[KEY]
    assert (item["transaction_id"], item["status"]) == ("tx_001b", "FAILED")


def test_collision_modify_moving_user_leaves_other_transaction_at_old_key(dynamodb, read_items):
    lambda_handler(stream_batch("insert-same-key-other-transaction"), None)
    event = stream_batch("modify-delivered")  # tx_001 moves from test_user_001 to test_user_002
    event["Records"][0]["dynamodb"]["NewImage"]["user_id"] = {"S": "test_user_002"}

    assert lambda_handler(event, None) == NO_FAILURES

    items = read_items()
    assert items[KEY]["transaction_id"] == "tx_001b"
    assert items[("test_user_002", KEY[1])]["transaction_id"] == "tx_001"


def test_collision_without_returned_item_falls_back_to_a_read(dynamodb, read_items, monkeypatch):
    """A backend that ignores ReturnValuesOnConditionCheckFailure: the holder is read instead."""

    class NoItemOnFailure:
        def __getattr__(self, name: str) -> Any:
            call = getattr(dynamodb, name)

            def without_item(**kwargs: Any) -> Any:
                try:
                    return call(**kwargs)
                except ClientError as error:
                    error.response.pop("Item", None)
                    raise

            return without_item

    lambda_handler(stream_batch("insert-ap-id"), None)
    monkeypatch.setattr(read_table, "dynamodb_client", NoItemOnFailure)

    response = lambda_handler(stream_batch("insert-same-key-other-transaction", "insert-ap-id"), None)

    assert response == failed("insert-same-key-other-transaction")
    assert read_items()[KEY]["transaction_id"] == "tx_001"


def test_collision_condition_failure_returns_the_holder(dynamodb):
    """moto and DynamoDB return the item that failed the condition (no extra read needed)."""
    lambda_handler(stream_batch("insert-ap-id"), None)
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(dynamodb, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(read_table, "dynamodb_client", Counting)
        lambda_handler(stream_batch("insert-same-key-other-transaction"), None)

    assert calls == ["put_item"]


def test_collision_read_item_without_transaction_id_is_reported(dynamodb, read_items):
    dynamodb.put_item(
        TableName="notification-records",
        Item={"user_id": {"S": KEY[0]}, "created_at": {"N": str(KEY[1])}},
    )

    assert lambda_handler(stream_batch("insert-ap-id"), None) == failed("insert-ap-id")
    assert "transaction_id" not in read_items()[KEY]
