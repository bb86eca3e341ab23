"""LambdaInvoker against a local HTTP server speaking the Lambda Invoke API (real botocore)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.errors import (
    InvalidLambdaResult,
    InvalidNextToken,
    LambdaFunctionError,
    LambdaInvokeError,
    LambdaRejectedRequest,
    LambdaTimeout,
    LambdaUnavailable,
    QueryError,
)
from service.invoker import LambdaInvoker, QueryLambdaRequest
from service.json_logging import configure_logging
from service.settings import Settings
from tests.events import load_event
from tests.service.fake_lambda_endpoint import FakeLambdaEndpoint, ScriptedResponse

REQUEST: QueryLambdaRequest = {
    "query_type": "user",
    "id": "test_user_001",
    "limit": 50,
    "next_token": None,
}


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and config from the environment only, never from the machine's files."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def endpoint() -> Iterator[FakeLambdaEndpoint]:
    """The fake Lambda endpoint, running."""
    server = FakeLambdaEndpoint().start()
    yield server
    server.stop()


@pytest.fixture
def invoker_factory(
    aws_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., LambdaInvoker]:
    """Build a LambdaInvoker from Settings, reaching `url` through AWS_ENDPOINT_URL."""

    def build(url: str, **overrides: Any) -> LambdaInvoker:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        options: dict[str, Any] = {"lambda_max_attempts": 1, "lambda_read_timeout": 5.0}
        options.update(overrides)
        return LambdaInvoker.from_settings(Settings(query_lambda_name="query-lambda", **options))

    return build


def test_invoke_result_ok_returns_records_and_sends_payload(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    endpoint.script.append(ScriptedResponse.result(load_event("query/user.response")))

    page = invoker_factory(endpoint.url).invoke(REQUEST, "req-42")

    assert [record.transaction_id for record in page.records] == ["tx_002", "tx_001", "tx_003"]
    assert page.records[1].ap_id == "mobile-app-001"
    assert page.records[2].ap_id is None
    (call,) = endpoint.received
    assert call.function_name == "query-lambda"
    assert call.invocation_type == "RequestResponse"
    assert call.client_context == {"custom": {"request_id": "req-42"}}
    assert call.payload == REQUEST


def test_invoke_function_error_is_lambda_function_error(
    endpoint: FakeLambdaEndpoint,
    invoker_factory: Callable[..., LambdaInvoker],
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    endpoint.script.append(ScriptedResponse.function_error("KeyError", "'user_id' not found"))

    with pytest.raises(LambdaFunctionError) as caught:
        invoker_factory(endpoint.url).invoke(REQUEST, "req-fe")

    assert caught.value.status_code == 502
    assert "KeyError" in caught.value.message
    assert "'user_id' not found" not in caught.value.message
    logged = capsys.readouterr().err
    assert '"request_id": "req-fe"' in logged
    assert "user_id' not found" in logged


def test_invoke_function_timed_out_is_lambda_timeout(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    endpoint.script.append(
        ScriptedResponse.function_error("Sandbox.Timedout", "Task timed out after 3.00 seconds")
    )

    with pytest.raises(LambdaTimeout):
        invoker_factory(endpoint.url).invoke(REQUEST, "req")


def test_invoke_throttled_is_unavailable_after_every_attempt(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    throttled = ScriptedResponse.aws_error(429, "TooManyRequestsException", "Rate exceeded")
    endpoint.script.extend([throttled, throttled])

    with pytest.raises(LambdaUnavailable) as caught:
        invoker_factory(endpoint.url, lambda_max_attempts=2).invoke(REQUEST, "req")

    assert caught.value.status_code == 503
    assert "TooManyRequestsException" in caught.value.message
    assert len(endpoint.received) == 2


def test_invoke_throttled_once_then_ok_is_retried(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    endpoint.script.extend(
        [
            ScriptedResponse.aws_error(429, "TooManyRequestsException", "Rate exceeded"),
            ScriptedResponse.result(load_event("query/fail.response")),
        ]
    )

    page = invoker_factory(endpoint.url, lambda_max_attempts=2).invoke(REQUEST, "req")

    assert page.count == 1
    assert len(endpoint.received) == 2


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (404, "ResourceNotFoundException", LambdaUnavailable),
        (500, "ServiceException", LambdaUnavailable),
        (502, "EC2ThrottledException", LambdaUnavailable),
        (403, "AccessDeniedException", LambdaInvokeError),
        (413, "RequestTooLargeException", LambdaInvokeError),
    ],
)
def test_invoke_aws_error_maps_to_class(
    endpoint: FakeLambdaEndpoint,
    invoker_factory: Callable[..., LambdaInvoker],
    status: int,
    code: str,
    error_class: type[QueryError],
) -> None:
    endpoint.script.append(ScriptedResponse.aws_error(status, code, "no"))

    with pytest.raises(error_class) as caught:
        invoker_factory(endpoint.url).invoke(REQUEST, "req")

    assert code in caught.value.message


def test_invoke_read_timeout_is_lambda_timeout(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    endpoint.script.append(ScriptedResponse(body=b"{}", delay=10.0))

    with pytest.raises(LambdaTimeout) as caught:
        invoker_factory(endpoint.url, lambda_read_timeout=0.3).invoke(REQUEST, "req")

    assert caught.value.status_code == 504


def test_invoke_endpoint_unreachable_is_unavailable(
    invoker_factory: Callable[..., LambdaInvoker],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(LambdaUnavailable) as caught:
        invoker_factory(f"http://127.0.0.1:{closed_port}").invoke(REQUEST, "req")

    assert caught.value.status_code == 503


@pytest.mark.parametrize(
    ("answer", "error_class", "field"),
    [
        (load_event("query/invalid-next-token.response"), InvalidNextToken, "next_token"),
        (load_event("query/invalid-failure.response"), LambdaRejectedRequest, "query_type"),
        ({"ok": True, "records": [{"user_id": "u"}], "count": 1}, InvalidLambdaResult, None),
    ],
)
def test_invoke_result_not_ok_maps_to_error(
    endpoint: FakeLambdaEndpoint,
    invoker_factory: Callable[..., LambdaInvoker],
    answer: Any,
    error_class: type[QueryError],
    field: str | None,
) -> None:
    endpoint.script.append(ScriptedResponse.result(answer))

    with pytest.raises(error_class) as caught:
        invoker_factory(endpoint.url).invoke(REQUEST, "req")

    assert caught.value.field == field


def test_invoke_result_not_json_is_invalid_result(
    endpoint: FakeLambdaEndpoint, invoker_factory: Callable[..., LambdaInvoker]
) -> None:
    endpoint.script.append(ScriptedResponse(body=b"<html>oops</html>"))

    with pytest.raises(InvalidLambdaResult):
        invoker_factory(endpoint.url).invoke(REQUEST, "req")


def test_connection_pool_holds_one_connection_per_route_thread(
    invoker_factory: Callable[..., LambdaInvoker],
) -> None:
    """Every thread the query routes invoke on keeps its connection: none opened per call."""
    from service.routes.query import _INVOKE_THREADS

    invoker = invoker_factory("http://127.0.0.1:9")
    pool_size = invoker._client.meta.config.max_pool_connections
    assert pool_size >= _INVOKE_THREADS._max_workers
