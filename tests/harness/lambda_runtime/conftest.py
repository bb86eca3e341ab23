"""The runtime the runtime tests call directly (no HTTP), with a log sink that remembers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.lambda_runtime.runtime import LambdaRuntime
from tests.harness.lambda_runtime.runtime_helpers import ENDPOINT, REGION, LogCollector


@pytest.fixture
def logs() -> LogCollector:
    return LogCollector()


@pytest.fixture
def runtime(logs: LogCollector) -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime(
        endpoint_url=ENDPOINT,
        region=REGION,
        log_sink=logs,
        max_concurrency=4,
        event_retry_delays_s=(0.05, 0.05),
        event_throttle_delay_s=0.05,
    )
    yield rt
    rt.close()
