"""boto3 clients on the endpoint for the pollers, one per (service, region), made on first use.

A mapping's poller reads its source in the source's region and account (the credential scope of
the request that created it), as Lambda does: the account travels in moto's ``x-moto-account-id``
header (the pollers sign with the harness's one set of credentials).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["RegionalClients"]


class RegionalClients:
    """``clients("sqs", "eu-west-1", "111122223333")``: a cached boto3 client on the endpoint."""

    def __init__(self, endpoint_url: str) -> None:
        self._endpoint_url = endpoint_url
        self._session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"},
                              max_pool_connections=64, connect_timeout=5, read_timeout=60)
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str, account_id: str | None = None) -> Any:
        key = (service, region, account_id)
        with self._lock:
            client = self._clients.get(key)
            if client is None:  # boto3 sessions are not thread-safe: clients are made here only
                client = self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint_url,
                    config=self._config)
                if account_id is not None:
                    client.meta.events.register(
                        "before-sign", lambda request, **_: _name_account(request, account_id))
            return client


def _name_account(request: Any, account_id: str) -> None:
    request.headers["x-moto-account-id"] = account_id
