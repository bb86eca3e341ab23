"""The service as the harness and ECS run it: uvicorn --factory, settings from the environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.settings import Settings
from tests.events import load_event
from tests.service.fake_lambda_endpoint import FakeLambdaEndpoint, ScriptedResponse
from tests.service.uvicorn_thread import serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def endpoint() -> Iterator[FakeLambdaEndpoint]:
    """The fake Lambda endpoint, running."""
    server = FakeLambdaEndpoint().start()
    yield server
    server.stop()


@pytest.fixture
def service_env(endpoint: FakeLambdaEndpoint, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment an ECS task would have, with the endpoint pointing at the fake Lambda."""
    env = {
        "QUERY_LAMBDA_NAME": "query-lambda",
        "AWS_REGION": "ap-southeast-1",
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "LAMBDA_MAX_ATTEMPTS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


@pytest.fixture
def factory_server(service_env: dict[str, str]) -> Iterator[str]:
    """`service.app:create_app` served by uvicorn (factory mode) on a free port; yields its URL."""
    config = uvicorn.Config(
        "service.app:create_app", factory=True, host="127.0.0.1", port=0, log_level="warning"
    )
    with serve_in_thread(config) as url:
        yield url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_settings_from_environment_are_read(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_READ_TIMEOUT", "2.5")
    monkeypatch.setenv("LOG_LEVEL", "debug")

    settings = Settings()

    assert settings.query_lambda_name == "query-lambda"
    assert settings.aws_region == "ap-southeast-1"
    assert settings.lambda_read_timeout == 2.5
    assert settings.lambda_max_attempts == 1
    assert settings.log_level == "DEBUG"


def test_settings_defaults_match_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QUERY_LAMBDA_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "PORT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert (settings.query_lambda_name, settings.aws_region) == ("query-lambda", "ap-southeast-1")
    assert (settings.port, settings.log_level) == (8000, "INFO")


def test_factory_server_queries_lambda_over_invoke_api(
    factory_server: str, endpoint: FakeLambdaEndpoint
) -> None:
    endpoint.script.append(ScriptedResponse.result(load_event("query/user.response")))

    response = httpx.post(
        f"{factory_server}/query/user",
        json={"user_id": " test_user_001 "},
        headers={"X-Request-Id": "e2e-1"},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "e2e-1"
    assert response.json()["records"][1]["ap_id"] == "mobile-app-001"
    (call,) = endpoint.received
    assert call.client_context == {"custom": {"request_id": "e2e-1"}}
    assert call.payload["id"] == "test_user_001"


def test_factory_server_function_error_is_502(
    factory_server: str, endpoint: FakeLambdaEndpoint
) -> None:
    endpoint.script.append(ScriptedResponse.function_error("RuntimeError", "table missing"))

    response = httpx.post(f"{factory_server}/query/fail", json={"transaction_id": "tx_002"})

    assert response.status_code == 502
    assert response.json()["code"] == "LambdaFunctionError"


def test_python_m_service_serves_health_and_logs_json(service_env: dict[str, str]) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = None
        deadline = time.monotonic() + 30
        while response is None:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "python -m service did not answer"
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/health", headers={"X-Request-Id": "hc"}
                )
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert {"request_id": "hc", "path": "/health", "status": 200}.items() <= access[-1].items()
    assert any(line["logger"].startswith("uvicorn") for line in lines)
