"""Fixtures shared by the harness parts' tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="module")
def keyed_table(aws_client_factory: Callable[..., Any]) -> str:
    """A new on-demand DynamoDB table on the session endpoint, keyed by ``k`` (a string)."""
    name = f"keyed-{uuid.uuid4().hex[:8]}"
    aws_client_factory("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    )
    return name
