"""LambdaRuntime.invoke_warm: a warm invocation waited for on the event loop (no thread)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from harness.lambda_runtime.environment import Outcome, Worker
from harness.lambda_runtime.runtime import InvokeResult, LambdaRuntime, TooManyRequests
from tests.harness.lambda_runtime.runtime_helpers import (
    ENDPOINT,
    REGION,
    LogCollector,
    config_factory,
    worker_pids,
)


@pytest.fixture
def runtime(logs: LogCollector) -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime(endpoint_url=ENDPOINT, region=REGION, log_sink=logs, max_concurrency=4)
    yield rt
    rt.close()


def warm(rt: LambdaRuntime, name: str, payload: bytes = b"{}", **kwargs: Any) -> InvokeResult | None:
    return asyncio.run(rt.invoke_warm(name, payload, **kwargs))


def test_invoke_warm_without_an_initialised_worker_is_none_then_uses_the_warm_one(
    runtime: LambdaRuntime,
) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    assert warm(runtime, "echo") is None  # no environment yet: invoke() starts one
    assert worker_pids(runtime) == set()
    cold = json.loads(runtime.invoke("echo", b"{}").payload)
    result = warm(runtime, "echo", b'{"a": 1}')
    assert result is not None and result.status_code == 200 and result.function_error is None
    body = json.loads(result.payload)
    assert body["pid"] == cold["pid"]
    assert body["event"] == {"a": 1}
    assert body["aws_request_id"] == result.request_id
    assert runtime._unreserved_busy == 0


def test_invoke_warm_function_error_and_tail_are_as_invoke(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("fail", "handlers.fail"))
    runtime.invoke("fail", b"{}")
    result = warm(runtime, "fail", tail=True)
    assert result is not None and result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "KeyError"
    assert result.log_result is not None
    tail = base64.b64decode(result.log_result).decode()
    assert f"REPORT RequestId: {result.request_id}\t" in tail


def test_invoke_warm_timeout_replaces_the_worker(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("sleepy", "handlers.sleep", timeout_s=0.5))
    runtime.invoke("sleepy", b'{"seconds": 0}')
    (old_pid,) = worker_pids(runtime)
    result = warm(runtime, "sleepy", b'{"seconds": 30}')
    assert result is not None and result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    assert not psutil.pid_exists(old_pid)
    assert worker_pids(runtime) == set()
    assert logs.wait_for(result.request_id)[-1].endswith("Status: timeout")
    assert json.loads(runtime.invoke("sleepy", b'{"seconds": 0}').payload) == {"slept": 0}


def test_invoke_warm_worker_exit_is_exit_error(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("sleepy", "handlers.sleep", timeout_s=5))
    runtime.invoke("sleepy", b'{"seconds": 0}')
    (pid,) = worker_pids(runtime)

    async def invoke_and_kill() -> InvokeResult | None:
        call = asyncio.ensure_future(runtime.invoke_warm("sleepy", b'{"seconds": 30}'))
        await asyncio.sleep(0.3)
        psutil.Process(pid).kill()
        return await call

    result = asyncio.run(invoke_and_kill())
    assert result is not None
    assert json.loads(result.payload)["errorType"] == "Runtime.ExitError"
    assert worker_pids(runtime) == set()


def test_invoke_warm_with_a_hook_that_is_not_passive_is_none(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    runtime.invoke("echo", b"{}")
    seen: list[str] = []

    class Hook:
        def __init__(self, passive: bool) -> None:
            self._passive = passive

        def passive(self, function: str) -> bool:
            seen.append(function)
            return self._passive

        def __call__(self, worker: Worker, request_id: str, header: bytes, event: bytes) -> Outcome:
            return worker.invoke(request_id, header, event)

    runtime.invoke_hook = lambda worker, request_id, header, event: worker.invoke(
        request_id, header, event
    )
    assert warm(runtime, "echo") is None  # a hook that cannot say it passes: always invoke()
    runtime.invoke_hook = Hook(passive=False)
    assert warm(runtime, "echo") is None
    runtime.invoke_hook = Hook(passive=True)
    assert warm(runtime, "echo") is not None
    assert seen == ["echo", "echo"]


def test_invoke_warm_beyond_reserved_concurrency_is_throttled(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("none", "handlers.echo", reserved_concurrency=0))
    with pytest.raises(TooManyRequests):
        runtime.invoke("none", b"{}")
    runtime.register(config_factory("echo", "handlers.echo"))
    runtime.invoke("echo", b"{}")
    runtime._unreserved_busy = runtime.max_concurrency  # every unreserved execution is taken
    with pytest.raises(TooManyRequests) as raised:
        warm(runtime, "echo")
    assert raised.value.reason == "ConcurrentInvocationLimitExceeded"
