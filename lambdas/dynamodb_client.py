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
#: For callers that build their parameters in code from an already validated request (the
#: query Lambda): botocore's client-side parameter validation (a documented Config option) was
#: ~8 % of the query Lambda's CPU per request (py-spy); DynamoDB still validates every request
#: itself and answers ValidationException, which raises as before.
_UNVALIDATED_CONFIG = _CONFIG.merge(Config(parameter_validation=False))
_lock = threading.Lock()
_clients: dict[bool, Any] = {}


def dynamodb_client(*, validate_parameters: bool = True) -> Any:
    """Return the process-wide DynamoDB client, creating it on first use.

    ``validate_parameters=False``: the client without botocore's client-side validation.
    """
    with _lock:
        client = _clients.get(validate_parameters)
        if client is None:
            config = _CONFIG if validate_parameters else _UNVALIDATED_CONFIG
            client = _clients[validate_parameters] = boto3.session.Session().client(
                "dynamodb", config=config
            )
        return client


def reset_dynamodb_client() -> None:
    """Forget the cached clients (tests, or after the endpoint changed)."""
    with _lock:
        _clients.clear()


def notification_table_name() -> str:
    """Return the read table's name from NOTIFICATION_TABLE_NAME (default notification-records)."""
    return os.environ.get("NOTIFICATION_TABLE_NAME") or DEFAULT_TABLE_NAME
