"""A runtime with no AWS endpoint behind it (the functions here call none) and a plain log sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.lambda_runtime.runtime import LambdaRuntime
from tests.harness.lambda_runtime.forkserver.forkserver_helpers import REGION, Lines


@pytest.fixture
def logs() -> Lines:
    return Lines()


@pytest.fixture
def runtime(logs: Lines) -> Iterator[LambdaRuntime]:
    with LambdaRuntime(endpoint_url="http://127.0.0.1:9", region=REGION, log_sink=logs) as rt:
        yield rt
