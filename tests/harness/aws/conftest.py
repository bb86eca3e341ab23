"""Fixtures of the moto-patch tests: clients without retries, a notification-records-like table,
and a spy on how many items each moto Query is handed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness.aws.moto_tables import NO_RETRY


@pytest.fixture()
def dynamodb(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("dynamodb", config=NO_RETRY)


@pytest.fixture()
def streams(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("dynamodbstreams", config=NO_RETRY)


@pytest.fixture()
def table(dynamodb: Any) -> Iterator[str]:
    """Like notification-records: user_id + created_at, GSI on marketing_id, a stream."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
            {"AttributeName": "marketing_id", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "marketing_id-index",
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "marketing_id", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield name
    dynamodb.delete_table(TableName=name)


@pytest.fixture()
def all_items_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many items each moto Table.all_items() call hands to a Query."""
    from moto.dynamodb.models.table import Table

    sizes: list[int] = []
    patched = Table.all_items

    def spy(self: Any) -> Any:
        result = patched(self)
        sizes.append(len(result))
        return result

    monkeypatch.setattr(Table, "all_items", spy)
    return sizes
