"""The Lambdas' DynamoDB client, created on first use (so a run-time AWS_ENDPOINT_URL counts)."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = [
    "DEFAULT_TABLE_NAME",
    "dynamodb_client",
    "notification_table_name",
    "reset_dynamodb_client",
]

DEFAULT_TABLE_NAME = "notification-records"

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)
_lock = threading.Lock()
_client: Any = None


def dynamodb_client() -> Any:
    """Return the process-wide DynamoDB client, creating it on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = boto3.session.Session().client("dynamodb", config=_CONFIG)
        return _client


def reset_dynamodb_client() -> None:
    """Forget the cached client (tests, or after the endpoint changed)."""
    global _client
    with _lock:
        _client = None


def notification_table_name() -> str:
    """Return the read table's name from NOTIFICATION_TABLE_NAME (default notification-records)."""
    return os.environ.get("NOTIFICATION_TABLE_NAME") or DEFAULT_TABLE_NAME
