"""boto3 clients on the endpoint for the pollers, one per (service, region), made on first use.

A mapping's poller reads its source in the source's region and account (the credential scope of
the request that created it), as Lambda does: the account travels in moto's ``x-moto-account-id``
header (over HTTP the pollers sign with the harness's one set of credentials).

In the endpoint's own process the DynamoDB Streams pollers read through :class:`DirectStreamsClient`
instead: the same JSON request the HTTP route carries, handed to the endpoint's request handler
(reset gate, faults, moto's lock and dispatch) without botocore's serialization, a loopback HTTP
hop and two thread hand-overs; about half the CPU and a few milliseconds per GetRecords. Given
the function's ARN, those reads are signed as its execution role, as Lambda reads a stream.
GetRecords (the sync path's read) skips moto's request cycle too, unless IAM is enforced: the
endpoint answers it with ``harness.aws.stream_patches.get_records_answer`` (a document, not bytes).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

__all__ = ["DirectStreamsClient", "RegionalClients", "StreamsTransport"]

#: (action, JSON body, region, account id or None, function ARN or None) -> (HTTP status, body):
#: a DynamoDB Streams request served in-process by the endpoint, as the function's execution role;
#: the body as bytes, or already as the JSON document (the endpoint's lean GetRecords).
StreamsTransport = Callable[
    [str, bytes, str, str | None, str | None], tuple[int, bytes | dict[str, Any]]
]


class RegionalClients:
    """``clients("sqs", "eu-west-1", "111122223333")``: a cached boto3 client on the endpoint."""

    def __init__(self, endpoint_url: str, streams: StreamsTransport | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._streams = streams
        self._session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"},
                              max_pool_connections=64, connect_timeout=5, read_timeout=60)
        self._clients: dict[tuple[str, str, str | None, str | None], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str, account_id: str | None = None,
                 function: str | None = None) -> Any:
        """``function``: the ARN of the function a DynamoDB Streams client reads for (the
        in-process client then reads as its execution role)."""
        direct = service == "dynamodbstreams" and self._streams is not None
        key = (service, region, account_id, function if direct else None)
        with self._lock:
            client = self._clients.get(key)
            if client is None and direct:
                assert self._streams is not None
                client = self._clients[key] = DirectStreamsClient(self._streams, region,
                                                                  account_id, function)
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


class DirectStreamsClient:
    """The three DynamoDB Streams calls a poller makes, as a boto3 client offers them, served by
    a :data:`StreamsTransport`. Answers keep the wire form (``ApproximateCreationDateTime`` in
    epoch seconds, binary attributes base64, as Lambda's event carries them); an error answer
    raises botocore's ``ClientError`` with AWS's error code, as the boto3 client would."""

    def __init__(self, transport: StreamsTransport, region: str, account_id: str | None,
                 function: str | None = None) -> None:
        self._transport = transport
        self._region = region
        self._account_id = account_id
        self._function = function

    def describe_stream(self, **params: Any) -> dict[str, Any]:
        """DescribeStream."""
        return self._call("DescribeStream", params)

    def get_shard_iterator(self, **params: Any) -> dict[str, Any]:
        """GetShardIterator."""
        return self._call("GetShardIterator", params)

    def get_records(self, **params: Any) -> dict[str, Any]:
        """GetRecords."""
        return self._call("GetRecords", params)

    def _call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        status, body = self._transport(action, json.dumps(params).encode(), self._region,
                                       self._account_id, self._function)
        parsed: Any = body
        if not isinstance(body, dict):
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                parsed = {"message": body[:200].decode("utf-8", "replace")}
        document: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        if status >= 400:
            code = str(document.get("__type") or "InternalServerError").rsplit("#", 1)[-1]
            message = str(document.get("message") or document.get("Message") or "")
            raise ClientError({"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, action)
        return document
