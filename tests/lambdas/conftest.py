"""Fixtures for the Lambda tests: moto in-process, with the tables created from infra/terraform."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hcl2 import SerializationOptions
from moto import mock_aws

import lambdas.dynamodb_client
from lambdas.dynamodb_client import reset_dynamodb_client
from lambdas.stream_processor.handler import lambda_handler as stream_handler
from tests.events import load_event

MAIN_TF = Path(__file__).resolve().parents[2] / "infra" / "terraform" / "main.tf"
REGION = "ap-southeast-1"
_deserializer = TypeDeserializer()


@cache
def terraform_tables() -> dict[str, dict[str, Any]]:
    """Return the aws_dynamodb_table resources of main.tf, by table name."""
    options = SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    with MAIN_TF.open(encoding="utf-8") as handle:
        document = hcl2.load(handle, serialization_options=options)
    tables = {}
    for resource in document["resource"]:
        for body in resource.get("aws_dynamodb_table", {}).values():
            tables[body["name"]] = body
    return tables


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def create_table_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate a terraform aws_dynamodb_table body into a CreateTable request."""
    request: dict[str, Any] = {
        "TableName": body["name"],
        "BillingMode": body["billing_mode"],
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in body["attribute"]
        ],
        "KeySchema": _key_schema(body["hash_key"], body.get("range_key")),
    }
    indexes = body.get("global_secondary_index", [])
    if indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index["name"],
                "KeySchema": _key_schema(index["hash_key"], index.get("range_key")),
                "Projection": {"ProjectionType": index["projection_type"]},
            }
            for index in indexes
        ]
    if body.get("stream_enabled"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": body["stream_view_type"],
        }
    return request


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and the stack's region; no endpoint override, no real AWS."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("NOTIFICATION_TABLE_NAME", "notification-records")


@pytest.fixture(scope="session")
def shared_dynamodb_client() -> Any:
    """One DynamoDB client for the whole session (creating clients is slow); moto intercepts it."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client("dynamodb")


@pytest.fixture
def dynamodb(
    aws_environment: None, shared_dynamodb_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A DynamoDB client on moto, with every table of main.tf created; the Lambdas share it."""
    with mock_aws():
        for body in terraform_tables().values():
            shared_dynamodb_client.create_table(**create_table_request(body))
        monkeypatch.setattr(  # every dynamodb_client(...) of the Lambdas gets the shared one
            lambdas.dynamodb_client,
            "_clients",
            {True: shared_dynamodb_client, False: shared_dynamodb_client},
        )
        yield shared_dynamodb_client
    reset_dynamodb_client()


@pytest.fixture
def read_items(dynamodb: Any) -> Callable[[], dict[tuple[str, int], dict[str, Any]]]:
    """Return a function that reads the whole read table as {(user_id, created_at): item}."""

    def read() -> dict[tuple[str, int], dict[str, Any]]:
        items = dynamodb.scan(TableName="notification-records")["Items"]
        plain = [{k: _deserializer.deserialize(v) for k, v in item.items()} for item in items]
        return {(item["user_id"], int(item["created_at"])): item for item in plain}

    return read


def stream_batch(*names: str) -> dict[str, Any]:
    """Build one stream event holding the records of the named canonical samples, in order."""
    records = []
    for name in names:
        records.extend(load_event(f"stream/{name}.event")["Records"])
    return {"Records": records}


@pytest.fixture
def seeded(dynamodb: Any) -> Any:
    """The read table after the seed records (tx_001, tx_002, pre-V3 tx_003) went through."""
    response = stream_handler(stream_batch("insert-ap-id", "insert-failed", "insert-pre-v3"), None)
    assert response == {"batchItemFailures": []}
    return dynamodb
