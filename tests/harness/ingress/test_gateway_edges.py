"""Gateway edges a newcomer found (issue 11, point 11): %2F, //, slow bodies, huge X-Request-Id."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.ingress.gateway import Gateway
from harness.ingress.servers import ASGIServer
from tests.harness.ingress.gateway_documents import MISSING_TOKEN, api_document, create_echo_app


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with ASGIServer(create_echo_app("alb"), name="upstream") as upstream:
        with Gateway(api_document(), upstream.url, client_body_timeout_s=1.0) as gw:
            yield gw


def test_gateway_encoded_slash_is_decoded_before_matching(gateway: Gateway) -> None:
    """API Gateway decodes the path before it matches resources: %2F is a separator there."""
    answer = httpx.post(f"{gateway.url}/v1/query%2Fuser", json={"user_id": "u"})
    assert answer.status_code == 200 and answer.json()["path"] == "/query/user"


def test_gateway_empty_segment_matches_no_resource(gateway: Gateway) -> None:
    answer = httpx.post(f"{gateway.url}/v1//query/user", json={"user_id": "u"})
    assert answer.status_code == 403 and answer.json() == MISSING_TOKEN


def test_gateway_huge_request_id_is_replaced_not_echoed(gateway: Gateway) -> None:
    answer = httpx.post(
        f"{gateway.url}/v1/query/user", json={"user_id": "u"}, headers={"X-Request-Id": "a" * 8000}
    )
    assert answer.status_code == 200
    echoed = answer.headers["x-request-id"]
    assert echoed == answer.headers["x-amzn-requestid"] and len(echoed) == 36
    assert answer.json()["headers"]["x-request-id"] == echoed
    fine = httpx.get(f"{gateway.url}/v1/health", headers={"X-Request-Id": "mine-123"})
    assert fine.headers["x-request-id"] == "mine-123"


def test_gateway_slow_client_body_is_cut_off(gateway: Gateway) -> None:
    host, port = gateway.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/query/user HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"user_id\""
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"Request Timeout" in answer
    assert time.monotonic() - started < 25  # cut off at the timeout, not when the client gives up
