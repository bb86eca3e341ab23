"""Request ids (taken, echoed, passed to the Lambda) and the JSON access log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.service.fakes import FakeInvoker, ServiceClient

TRACE_ID = "Root=1-67891233-abcdef012345678912345678;Parent=463ac35c9f6413ad;Sampled=1"


def test_request_id_header_is_echoed_and_sent_to_lambda(
    client: ServiceClient, fake_invoker: FakeInvoker
) -> None:
    response = client.post(
        "/query/user", json={"user_id": "test_user_001"}, headers={"X-Request-Id": "req-abc-123"}
    )

    assert response.headers["x-request-id"] == "req-abc-123"
    assert fake_invoker.calls[-1][1] == "req-abc-123"


def test_request_id_falls_back_to_amzn_trace_id(
    client: ServiceClient, fake_invoker: FakeInvoker
) -> None:
    response = client.post(
        "/query/user", json={"user_id": "u"}, headers={"X-Amzn-Trace-Id": TRACE_ID}
    )

    assert response.headers["x-request-id"] == TRACE_ID
    assert fake_invoker.calls[-1][1] == TRACE_ID


def test_request_id_prefers_x_request_id_over_trace_id(client: ServiceClient) -> None:
    headers = {"X-Request-Id": "mine", "X-Amzn-Trace-Id": TRACE_ID}

    response = client.get("/health", headers=headers)

    assert response.headers["x-request-id"] == "mine"


@pytest.mark.parametrize("header", [None, "", "has space", "x" * 201, "é".encode("latin-1")])
def test_request_id_missing_or_unusable_is_made_up(
    client: ServiceClient, fake_invoker: FakeInvoker, header: str | bytes | None
) -> None:
    headers = {"X-Request-Id": header} if header is not None else {}

    response = client.post("/query/user", json={"user_id": "u"}, headers=headers)

    made_up = response.headers["x-request-id"]
    assert uuid.UUID(made_up).version == 4
    assert fake_invoker.calls[-1][1] == made_up


def test_request_ids_made_up_differ_per_request(client: ServiceClient) -> None:
    first = client.get("/health").headers["x-request-id"]
    second = client.get("/health").headers["x-request-id"]

    assert first != second


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("GET", "/query/user")])
def test_request_id_is_echoed_on_errors(client: ServiceClient, method: str, path: str) -> None:
    response = client.request(method, path, headers={"X-Request-Id": "err-1"})

    assert response.status_code >= 400
    assert response.headers["x-request-id"] == "err-1"
    assert response.json()["request_id"] == "err-1"


def test_access_log_is_one_json_line_per_request(
    client: ServiceClient, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    log_lines()
    client.post("/query/user", json={"user_id": "u"}, headers={"X-Request-Id": "log-1"})
    client.post("/query/user", json={"user_id": ""}, headers={"X-Request-Id": "log-2"})

    access = [line for line in log_lines() if line["logger"] == "service.access"]
    assert [line["request_id"] for line in access] == ["log-1", "log-2"]
    assert [line["status"] for line in access] == [200, 422]
    for line in access:
        assert line["method"] == "POST"
        assert line["path"] == "/query/user"
        assert isinstance(line["duration_ms"], float)
    assert access[1]["error_code"] == "ValidationError"
