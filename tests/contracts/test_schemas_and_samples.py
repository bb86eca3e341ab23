"""The JSON Schemas are valid draft 2020-12, and every canonical sample follows its schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from lambdas.records import CommandRecord, QueryRecord
from tests.events import event_names, load_event

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "contracts" / "schemas"
SCHEMA_NAMES = sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json"))
_deserializer = TypeDeserializer()


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str) -> Draft202012Validator:
    resources = [
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
        for s in (schema(n) for n in SCHEMA_NAMES)
    ]
    return Draft202012Validator(schema(name), registry=Registry().with_resources(resources))


def sample_schema(name: str) -> str:
    """Which schema a sample follows, from its name's suffix."""
    suffixes = {
        ".event": "dynamodb-stream-event",
        ".batch-response": "batch-response",
        ".request": "query-request",
        ".response": "query-response",
    }
    for suffix, schema_name in suffixes.items():
        if name.endswith(suffix):
            return schema_name
    raise AssertionError(f"sample {name} has no known suffix ({', '.join(suffixes)})")


def images(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for record in event["Records"]:
        for key in ("NewImage", "OldImage"):
            if key in record["dynamodb"]:
                image = record["dynamodb"][key]
                found.append({k: _deserializer.deserialize(v) for k, v in image.items()})
    return found


def json_ready(value: Any) -> Any:
    return json.loads(json.dumps(value, default=int))


def test_schema_set_is_complete():
    assert SCHEMA_NAMES == [
        "batch-response",
        "command-record",
        "dynamodb-stream-event",
        "notification-record",
        "query-request",
        "query-response",
    ]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12_with_id(name):
    document = schema(name)

    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith(f"/{name}.schema.json")


INVALID_REQUESTS = [
    n for n in event_names() if n.startswith("query/invalid-") and n.endswith(".request")
]


@pytest.mark.parametrize("name", [n for n in event_names() if n not in INVALID_REQUESTS])
def test_sample_follows_its_schema(name):
    errors = list(validator(sample_schema(name)).iter_errors(load_event(name)))

    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("name", INVALID_REQUESTS)
def test_invalid_request_sample_is_rejected_by_schema_or_token_check(name):
    payload = load_event(name)
    rejected = not validator("query-request").is_valid(payload)
    expected = load_event(name.removesuffix(".request") + ".response")

    assert expected["ok"] is False
    assert rejected == (expected["error"]["code"] == "InvalidRequest")


@pytest.mark.parametrize("name", [n for n in event_names() if n.endswith(".event")])
def test_stream_sample_images_follow_command_record_schema_unless_invalid(name):
    decoded = images(load_event(name))
    results = [validator("command-record").is_valid(json_ready(image)) for image in decoded]

    assert decoded
    if "invalid-" in name:
        assert not all(results)
    else:
        assert all(results)


def test_schema_properties_match_record_models():
    assert set(schema("command-record")["properties"]) == set(CommandRecord.model_fields)
    notification = schema("notification-record")
    assert set(notification["properties"]) == set(QueryRecord.model_fields)
    assert set(notification["required"]) == set(QueryRecord.model_fields)


def test_seed_examples_are_in_the_samples():
    insert = images(load_event("stream/insert-ap-id.event"))[0]
    failed = images(load_event("stream/insert-failed.event"))[0]
    pre_v3 = images(load_event("stream/insert-pre-v3.event"))[0]

    assert (insert["transaction_id"], insert["ap_id"]) == ("tx_001", "mobile-app-001")
    assert insert["user_id"] == "test_user_001"
    assert insert["marketing_id"] == "campaign_2024_new_year"
    assert (failed["transaction_id"], failed["status"]) == ("tx_002", "FAILED")
    assert failed["error_msg"] and failed["ap_id"] in {"web-portal-001", "mobile-app-002"}
    assert "ap_id" not in pre_v3


def test_stream_samples_have_aws_shape():
    names = [n for n in event_names() if n.endswith(".event")]
    kinds = set()
    sequences = []
    for name in names:
        for record in load_event(name)["Records"]:
            kinds.add(record["eventName"])
            assert record["awsRegion"] == "ap-southeast-1"
            assert ":table/command-records/stream/" in record["eventSourceARN"]
            sequences.append(int(record["dynamodb"]["SequenceNumber"]))
    assert kinds == {"INSERT", "MODIFY", "REMOVE"}
    assert len(set(sequences)) == len(sequences)


def test_modify_sample_changes_status_sent_to_delivered():
    record = load_event("stream/modify-delivered.event")["Records"][0]["dynamodb"]

    assert record["OldImage"]["status"] == {"S": "SENT"}
    assert record["NewImage"]["status"] == {"S": "DELIVERED"}


@pytest.mark.parametrize(
    "payload",
    [
        {"query_type": "failure", "id": "x"},
        {"query_type": "user", "id": "x", "extra": 1},
        {"query_type": "user", "id": " x"},
        {"query_type": "user", "id": "x\n"},
        {"query_type": "user", "id": "x", "limit": 0},
    ],
)
def test_query_request_schema_rejects_bad_payload(payload):
    assert not validator("query-request").is_valid(payload)


def test_query_response_schema_rejects_record_without_ap_id():
    response = load_event("query/user.response")
    del response["records"][0]["ap_id"]

    assert not validator("query-response").is_valid(response)


def test_query_response_schema_rejects_source_sequence():
    response = load_event("query/user.response")
    response["records"][0]["source_sequence"] = "1".zfill(40)

    assert not validator("query-response").is_valid(response)


SEED = ROOT / "contracts" / "seed" / "command-records.json"


@pytest.mark.skipif(not SEED.exists(), reason="contracts/seed/command-records.json not present")
def test_seed_command_records_follow_command_record_schema_and_model():
    records = json.loads(SEED.read_text(encoding="utf-8"))
    check = validator("command-record")

    assert records
    for record in records:
        assert check.is_valid(record), [e.message for e in check.iter_errors(record)]
        CommandRecord.model_validate(record)
