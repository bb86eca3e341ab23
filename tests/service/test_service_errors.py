"""Error answers: every failure is an ErrorResponse JSON body with the right status, never HTML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.errors import (
    InvalidLambdaResult,
    LambdaFunctionError,
    LambdaTimeout,
    LambdaUnavailable,
)
from service.invoker import QueryLambdaRequest
from tests.events import load_event
from tests.service.fakes import FakeInvoker, ServiceClient

ERROR_KEYS = {"code", "message", "request_id", "errors"}


def assert_error_body(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert "<html" not in response.text.lower()
    assert "Traceback" not in response.text
    return body


def fields_of(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}


@pytest.mark.parametrize(
    ("sample", "status", "code", "field"),
    [
        ("query/invalid-next-token.response", 400, "InvalidNextToken", "next_token"),
        ("query/invalid-failure.response", 502, "LambdaRejectedRequest", "query_type"),
    ],
)
def test_query_lambda_ok_false_maps_to_status(
    client_factory: Callable[[FakeInvoker], ServiceClient],
    sample: str,
    status: int,
    code: str,
    field: str,
) -> None:
    client = client_factory(FakeInvoker(lambda request, request_id: load_event(sample)))

    response = client.post("/query/user", json={"user_id": "test_user_001", "next_token": "x"})

    body = assert_error_body(response, status, code)
    assert fields_of(body) == {field}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (LambdaFunctionError("the query Lambda failed with KeyError"), 502, "LambdaFunctionError"),
        (InvalidLambdaResult("the query Lambda returned non-JSON"), 502, "InvalidLambdaResult"),
        (
            LambdaUnavailable("Invoke failed with TooManyRequestsException"),
            503,
            "LambdaUnavailable",
        ),
        (LambdaTimeout("the query Lambda did not answer in time"), 504, "LambdaTimeout"),
    ],
)
def test_query_invoker_error_maps_to_status(
    failing_client_factory: Callable[[BaseException], ServiceClient],
    error: Exception,
    status: int,
    code: str,
) -> None:
    response = failing_client_factory(error).post("/query/fail", json={"transaction_id": "tx"})

    body = assert_error_body(response, status, code)
    assert body["message"] == str(error)


@pytest.mark.parametrize("result", [None, [], {"ok": "yes"}, {"ok": True, "records": "x"}])
def test_query_lambda_malformed_result_is_502(
    client_factory: Callable[[FakeInvoker], ServiceClient], result: Any
) -> None:
    client = client_factory(FakeInvoker(lambda request, request_id: result))

    response = client.post("/query/user", json={"user_id": "u"})

    assert_error_body(response, 502, "InvalidLambdaResult")


def test_query_unexpected_exception_is_json_500_and_logged(
    failing_client_factory: Callable[[BaseException], ServiceClient],
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    client = failing_client_factory(RuntimeError("secret internals"))

    response = client.post("/query/user", json={"user_id": "u"}, headers={"X-Request-Id": "r-500"})

    body = assert_error_body(response, 500, "InternalError")
    assert "secret internals" not in response.text
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert errors and errors[0]["request_id"] == "r-500"
    assert "secret internals" in errors[0]["exception"]
    assert body["request_id"] == "r-500"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"user_id"}),
        ({"user_id": ""}, {"user_id"}),
        ({"user_id": "   \t\n"}, {"user_id"}),
        ({"user_id": "x" * 257}, {"user_id"}),
        ({"user_id": " " * 250 + "x" * 7}, {"user_id"}),
        ({"user_id": 123}, {"user_id"}),
        ({"user_id": None}, {"user_id"}),
        ({"user_id": ["a"]}, {"user_id"}),
        ({"user_id": "u", "limit": 0}, {"limit"}),
        ({"user_id": "u", "limit": 101}, {"limit"}),
        ({"user_id": "u", "limit": "5"}, {"limit"}),
        ({"user_id": "u", "limit": 5.5}, {"limit"}),
        ({"user_id": "u", "limit": True}, {"limit"}),
        ({"user_id": "u", "limit": None}, {"limit"}),
        ({"user_id": "u", "next_token": ""}, {"next_token"}),
        ({"user_id": "u", "next_token": "t" * 4097}, {"next_token"}),
        ({"user_id": "u", "next_token": 5}, {"next_token"}),
        ({"user_id": "u", "marketing_id": "m"}, {"marketing_id"}),
        ({"user_id": "", "limit": 0, "extra": 1}, {"user_id", "limit", "extra"}),
    ],
)
def test_query_invalid_body_is_422_naming_fields(
    client: ServiceClient, fake_invoker: FakeInvoker, body: dict[str, Any], fields: set[str]
) -> None:
    response = client.post("/query/user", json=body)

    error = assert_error_body(response, 422, "ValidationError")
    assert fields_of(error) == fields
    assert all(item["message"] for item in error["errors"])
    assert fake_invoker.calls == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", None),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"user_id"', "application/json"),
        (b"user_id=u", "application/x-www-form-urlencoded"),
        (b'{"user_id": "u"}', "text/plain"),
    ],
)
def test_query_unusable_body_is_422_naming_body(
    client: ServiceClient, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    response = client.post("/query/marketing", content=content, headers=headers)

    error = assert_error_body(response, 422, "ValidationError")
    assert fields_of(error) == {"body"}


@pytest.mark.parametrize("raw_id", [r'"\ud800"', r'"a\udfffb"'])
def test_query_id_with_lone_surrogate_is_422(client: ServiceClient, raw_id: str) -> None:
    content = ('{"transaction_id": ' + raw_id + "}").encode()

    response = client.post(
        "/query/fail", content=content, headers={"content-type": "application/json"}
    )

    error = assert_error_body(response, 422, "ValidationError")
    assert fields_of(error) == {"transaction_id"}


def test_query_next_token_with_lone_surrogate_is_422(client: ServiceClient) -> None:
    content = b'{"user_id": "u", "next_token": "\\ud800"}'

    response = client.post(
        "/query/user", content=content, headers={"content-type": "application/json"}
    )

    assert fields_of(assert_error_body(response, 422, "ValidationError")) == {"next_token"}


@pytest.mark.parametrize("path", ["/query/failure", "/failed", "/v1/query/fail", "/"])
def test_old_or_unknown_path_is_json_404(client: ServiceClient, path: str) -> None:
    response = client.post(path, json={"transaction_id": "tx_002"})

    assert_error_body(response, 404, "NotFound")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/query/user", "POST"), ("PUT", "/query/fail", "POST"), ("POST", "/health", "GET")],
)
def test_wrong_method_is_json_405_with_allow(
    client: ServiceClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)

    assert_error_body(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_pages_do_not_serve_html(client: ServiceClient, path: str) -> None:
    response = client.get(path, headers={"accept": "text/html"})

    assert_error_body(response, 404, "NotFound")


def test_invoker_error_body_lists_no_field_when_none_given(
    client_factory: Callable[[FakeInvoker], ServiceClient],
) -> None:
    def handler(request: QueryLambdaRequest, request_id: str) -> Any:
        raise LambdaUnavailable("Invoke failed with ResourceNotFoundException")

    response = client_factory(FakeInvoker(handler)).post("/query/user", json={"user_id": "u"})

    assert assert_error_body(response, 503, "LambdaUnavailable")["errors"] == []
