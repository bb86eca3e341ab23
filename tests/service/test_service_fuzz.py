"""Schemathesis against the running service (fake Lambda): the contract holds for any input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.settings import Settings
from tests.service.fakes import FakeInvoker, seed_lambda
from tests.service.uvicorn_thread import serve_in_thread

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi.yaml"

schema = schemathesis.openapi.from_path(CONTRACT)


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    """The service with the seed-data fake Lambda, served by uvicorn on a free port."""
    app = create_app(Settings(log_level="WARNING"), invoker=FakeInvoker(seed_lambda))
    with serve_in_thread(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")) as url:
        yield url


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_service_fuzz_contract_holds(case: schemathesis.Case, service_url: str) -> None:
    case.call_and_validate(base_url=service_url)
