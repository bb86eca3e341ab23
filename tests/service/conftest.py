"""Fixtures for the service tests: a fake query Lambda injected into `create_app`, a client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from service.app import create_app
from service.invoker import QueryLambdaRequest
from service.settings import Settings
from tests.service.fakes import FakeInvoker, ServiceClient, seed_lambda


@pytest.fixture
def settings() -> Settings:
    """Settings that do not depend on the environment of the test run."""
    return Settings(query_lambda_name="query-lambda", aws_region="ap-southeast-1")


@pytest.fixture
def fake_invoker() -> FakeInvoker:
    """The fake query Lambda serving the seed data."""
    return FakeInvoker(seed_lambda)


@pytest.fixture
def client_factory(settings: Settings) -> Callable[[FakeInvoker], ServiceClient]:
    """Build a client on a fresh app with the given invoker injected."""

    def build(invoker: FakeInvoker) -> ServiceClient:
        return ServiceClient(create_app(settings, invoker=invoker))

    return build


@pytest.fixture
def client(
    client_factory: Callable[[FakeInvoker], ServiceClient], fake_invoker: FakeInvoker
) -> ServiceClient:
    """A client on an app whose Lambda serves the seed data."""
    return client_factory(fake_invoker)


@pytest.fixture
def failing_client_factory(
    client_factory: Callable[[FakeInvoker], ServiceClient],
) -> Callable[[BaseException], ServiceClient]:
    """Build a client whose Lambda raises `error` on every call."""

    def build(error: BaseException) -> ServiceClient:
        def handler(request: QueryLambdaRequest, request_id: str) -> Any:
            raise error

        return client_factory(FakeInvoker(handler))

    return build


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """Parse what the service logged to stderr so far; every line must be a JSON object."""

    def read() -> list[dict[str, Any]]:
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    return read
