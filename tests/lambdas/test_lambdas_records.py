"""Record models, the read-item mapping and the Lambdas' DynamoDB client."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from pydantic import ValidationError

import lambdas.dynamodb_client as client_module
from lambdas.query import request as request_module
from lambdas.records import (
    CommandRecord,
    QueryRecord,
    read_item_from_command,
    source_sequence_of,
)
from tests.events import load_event

ROOT = Path(__file__).resolve().parents[2]


def command(**overrides):
    base = {
        "transaction_id": "tx_001",
        "created_at": 1704067200000,
        "user_id": "test_user_001",
        "marketing_id": "campaign_2024_new_year",
        "ap_id": "mobile-app-001",
        "notification_title": "Happy New Year 2024!",
        "status": "SENT",
        "platform": "IOS",
        "device_token": "t",
        "payload": "{}",
    }
    base.update(overrides)
    return CommandRecord.model_validate(base)


def test_command_record_ap_id_defaults_to_none():
    data = command().model_dump()
    del data["ap_id"]

    assert CommandRecord.model_validate(data).ap_id is None
    assert QueryRecord.model_fields["ap_id"].default is None


def test_command_record_accepts_integral_decimal_created_at():
    assert command(created_at=Decimal("1704067200000")).created_at == 1704067200000


@pytest.mark.parametrize(
    "overrides",
    [
        {"created_at": Decimal("1.5")},
        {"created_at": True},
        {"created_at": "1704067200000"},
        {"created_at": -1},
        {"user_id": 1},
        {"user_id": ""},
        {"marketing_id": ""},
        {"status": "sent"},
        {"platform": "WEB"},
        {"payload": {"a": 1}},
    ],
)
def test_command_record_wrong_value_is_rejected(overrides):
    with pytest.raises(ValidationError):
        command(**overrides)


def test_read_item_omits_null_attributes_and_keeps_ap_id():
    item = read_item_from_command(command(marketing_id=None, error_msg=None), "0" * 40)

    assert "marketing_id" not in item and "error_msg" not in item
    assert item["ap_id"] == "mobile-app-001"
    assert "device_token" not in item and "payload" not in item
    assert item["source_sequence"] == "0" * 40


def test_query_record_wire_form_has_every_key_and_no_internal_attribute():
    item = read_item_from_command(command(ap_id=None), "1".zfill(40))
    item["created_at"] = Decimal(item["created_at"])

    wire = QueryRecord.from_item(item).to_wire()

    assert set(wire) == {
        "user_id",
        "created_at",
        "transaction_id",
        "marketing_id",
        "ap_id",
        "notification_title",
        "status",
        "platform",
        "error_msg",
    }
    assert wire["ap_id"] is None and wire["error_msg"] is None
    assert wire["created_at"] == 1704067200000 and isinstance(wire["created_at"], int)


def test_query_record_matches_canonical_response_record():
    record = load_event("query/user.response")["records"][0]

    assert QueryRecord.model_validate(record).to_wire() == record


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        ("1", "1".zfill(40)),
        ("4421584500000000017450439001", "4421584500000000017450439001".zfill(40)),
    ],
)
def test_source_sequence_pads_to_40_digits(sequence, expected):
    assert source_sequence_of(sequence) == expected


@pytest.mark.parametrize("sequence", ["", "12a", "-1", "1" * 41, "١٢"])
def test_source_sequence_rejects_non_sequence(sequence):
    with pytest.raises(ValueError):
        source_sequence_of(sequence)


def test_source_sequence_order_is_numeric_order():
    assert source_sequence_of("99") < source_sequence_of("100")


def test_bundled_query_request_schema_equals_contract():
    bundled = json.loads((ROOT / "lambdas/query/query-request.schema.json").read_text())
    contract = json.loads((ROOT / "contracts/schemas/query-request.schema.json").read_text())

    assert bundled == contract
    assert request_module.SCHEMA == contract


def test_dynamodb_client_is_created_lazily_with_endpoint_from_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    monkeypatch.setattr(client_module, "_clients", {})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

    first = client_module.dynamodb_client()

    assert first.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client_module.dynamodb_client() is first
    unvalidated = client_module.dynamodb_client(validate_parameters=False)
    assert unvalidated is not first
    assert unvalidated.meta.config.retries == first.meta.config.retries
    for client in (first, unvalidated):  # a bad parameter: rejected by botocore, or sent
        with Stubber(client) as stubber:
            stubber.add_response("query", {"Items": []})
            if client is first:
                with pytest.raises(ParamValidationError):
                    client.query(TableName="t", Limit="many")
            else:
                assert client.query(TableName="t", Limit="many")["Items"] == []
    client_module.reset_dynamodb_client()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
    assert client_module.dynamodb_client().meta.endpoint_url == "http://127.0.0.1:4567"
    client_module.reset_dynamodb_client()


def test_notification_table_name_defaults(monkeypatch):
    monkeypatch.delenv("NOTIFICATION_TABLE_NAME", raising=False)
    assert client_module.notification_table_name() == "notification-records"
    monkeypatch.setenv("NOTIFICATION_TABLE_NAME", "other")
    assert client_module.notification_table_name() == "other"


def test_lambdas_never_import_service_or_harness():
    for path in (ROOT / "lambdas").rglob("*.py"):
        text = path.read_text()
        for forbidden in ("import service", "from service", "import harness", "from harness"):
            assert forbidden not in text, f"{path} has {forbidden!r}"
