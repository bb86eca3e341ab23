"""Fixtures shared by the harness parts' tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest


def create_keyed_table(dynamodb: Any, prefix: str, *, stream: bool = False) -> tuple[str, str | None]:
    """A new on-demand table keyed by ``k`` (a string), with a NEW_AND_OLD_IMAGES stream when
    ``stream``: its name and its stream's ARN (None without one)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        **extra,
    )
    arn = dynamodb.describe_table(TableName=name)["Table"].get("LatestStreamArn") if stream else None
    return name, arn


@pytest.fixture(scope="module")
def keyed_table(aws_client_factory: Callable[..., Any]) -> str:
    """A new on-demand DynamoDB table on the session endpoint, keyed by ``k`` (a string)."""
    return create_keyed_table(aws_client_factory("dynamodb"), "keyed")[0]
