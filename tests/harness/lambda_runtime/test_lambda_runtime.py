"""harness.lambda_runtime.runtime called directly (no HTTP): RequestResponse invocations, their
errors and limits. Event invocations, logs and the function's lifecycle: test_lambda_runtime_lifecycle.py."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import harness.lambda_runtime.runtime as lambda_runtime_module
from harness.lambda_runtime.runtime import (
    InvalidRequestContent,
    LambdaRuntime,
    TooManyRequests,
)
from tests.harness.lambda_runtime.runtime_helpers import (
    ENDPOINT,
    FIXTURES,
    REGION,
    LogCollector,
    config_factory,
    invoke_json,
    worker_pids,
)


def test_public_surface_exports_are_complete() -> None:
    for name in lambda_runtime_module.__all__:
        assert hasattr(lambda_runtime_module, name)


def test_invoke_success_returns_handler_result_and_context(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo", memory_mb=256, timeout_s=7))
    result = runtime.invoke("echo", b'{"a": [1, 2]}')
    body = json.loads(result.payload)
    assert (result.status_code, result.function_error, result.log_result) == (200, None, None)
    assert result.executed_version == "$LATEST"
    assert body["event"] == {"a": [1, 2]}
    assert body["aws_request_id"] == result.request_id
    assert body["function_name"] == "echo"
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == f"arn:aws:lambda:{REGION}:000000000000:function:echo"
    assert body["memory_limit_in_mb"] == "256"
    assert body["log_group_name"] == "/aws/lambda/echo"
    assert "[$LATEST]" in body["log_stream_name"]
    assert 0 < body["remaining_ms"] <= 7000
    assert body["identity_id"] is None
    assert body["has_client_context"] is False


def test_invoke_warm_reuses_the_worker(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    first = invoke_json(runtime, "echo")
    second = invoke_json(runtime, "echo")
    assert first["pid"] == second["pid"]
    assert first["aws_request_id"] != second["aws_request_id"]


def test_invoke_empty_payload_is_an_empty_object(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    assert invoke_json(runtime, "echo")["event"] == {}


def test_worker_environment_has_lambda_variables_and_nothing_leaks(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_OF_THE_PARENT", "leak")
    runtime.register(config_factory("env", "handlers.environment", memory_mb=512))
    env = invoke_json(runtime, "env")
    assert env["STAGE"] == "test"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/env"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["_HANDLER"] == "handlers.environment"
    assert env["LAMBDA_TASK_ROOT"] == str(FIXTURES) == env["__cwd__"]
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["AWS_ACCESS_KEY_ID"] == "test" and env["AWS_SECRET_ACCESS_KEY"] == "test"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert "SECRET_OF_THE_PARENT" not in env


def test_worker_can_import_the_project_virtualenv_packages(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    (tmp_path / "uses_libs.py").write_text(
        "import boto3\nimport aws_lambda_powertools\n"
        "def handler(event, context):\n"
        "    return boto3.session.Session().region_name\n"
    )
    runtime.register(config_factory("libs", "uses_libs.handler", code_dir=tmp_path))
    assert invoke_json(runtime, "libs") == REGION


def test_invoke_client_context_is_decoded_on_the_context(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("cc", "handlers.client_context"))
    raw = {
        "custom": {"request_id": "req-1"},
        "env": {"locale": "en"},
        "client": {"installation_id": "inst-9"},
    }
    encoded = base64.b64encode(json.dumps(raw).encode()).decode()
    body = invoke_json(runtime, "cc", client_context=encoded)
    assert body == {
        "custom": {"request_id": "req-1"},
        "env": {"locale": "en"},
        "installation_id": "inst-9",
    }


@pytest.mark.parametrize("client_context", ["not base64!", base64.b64encode(b"[1]").decode()])
def test_invoke_bad_client_context_is_invalid_request(
    runtime: LambdaRuntime, client_context: str
) -> None:
    runtime.register(config_factory("cc", "handlers.client_context"))
    with pytest.raises(InvalidRequestContent):
        runtime.invoke("cc", b"{}", client_context=client_context)


def test_invoke_handler_exception_has_aws_error_shape(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("fail", "handlers.fail"))
    result = runtime.invoke("fail", b"{}")
    error = json.loads(result.payload)
    assert (result.status_code, result.function_error) == (200, "Unhandled")
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'missing-key'"
    assert error["requestId"] == result.request_id
    assert any("in fail" in frame for frame in error["stackTrace"])
    assert not any("lambda_runtime/worker.py" in frame for frame in error["stackTrace"])


def test_invoke_handler_exception_keeps_the_worker_warm(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("fail", "handlers.fail"))
    runtime.invoke("fail", b"{}")
    pids = worker_pids(runtime)
    runtime.invoke("fail", b"{}")
    assert worker_pids(runtime) == pids


def test_invoke_import_failure_is_import_module_error(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("broken", "broken_import.handler"))
    result = runtime.invoke("broken", b"{}")
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Unable to import module 'broken_import': ")
    assert "module_that_does_not_exist_anywhere" in error["errorMessage"]


def test_invoke_missing_function_is_handler_not_found(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("missing", "handlers.no_such_function"))
    error = json.loads(runtime.invoke("missing", b"{}").payload)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'no_such_function' missing on module 'handlers'"


def test_invoke_unserialisable_return_is_marshal_error(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("marshal", "handlers.marshal"))
    result = runtime.invoke("marshal", b"{}")
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Runtime.MarshalError"


def test_invoke_timeout_kills_the_worker_and_the_next_invoke_works(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("sleepy", "handlers.sleep", timeout_s=0.5))
    invoke_json(runtime, "sleepy", {"seconds": 0})
    (old_pid,) = worker_pids(runtime)
    result = runtime.invoke("sleepy", b'{"seconds": 30}')
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith(f"{result.request_id} Task timed out after 0.50 seconds")
    assert not psutil.pid_exists(old_pid)
    assert invoke_json(runtime, "sleepy", {"seconds": 0}) == {"slept": 0}
    lines = logs.wait_for(result.request_id)
    assert "going to sleep" in lines
    assert any("Task timed out after 0.50 seconds" in line for line in lines)
    assert lines[-1].endswith("Status: timeout")


def test_invoke_worker_crash_is_exit_error_and_runtime_recovers(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("crash", "handlers.crash"))
    result = runtime.invoke("crash", b"{}")
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert "about to crash" in logs.wait_for(result.request_id)
    assert worker_pids(runtime) == set()
    runtime.register(config_factory("echo", "handlers.echo"))
    assert invoke_json(runtime, "echo")["function_name"] == "echo"


def test_invoke_beyond_concurrency_limit_is_throttled(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    runtime.register(
        config_factory("block", "handlers.block", reserved_concurrency=2, timeout_s=60)
    )
    event = json.dumps({"dir": str(tmp_path)}).encode()
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(runtime.invoke("block", event)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("started-*"))) < 2:
        assert time.monotonic() < deadline, "the two invocations never started"
        time.sleep(0.01)
    with pytest.raises(TooManyRequests):
        runtime.invoke("block", event)
    (tmp_path / "release").touch()
    for thread in threads:
        thread.join(30)
    assert [r.function_error for r in results] == [None, None]
    assert runtime.invoke("block", event).function_error is None


def test_invoke_reserved_concurrency_zero_always_throttles(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("off", "handlers.noop", reserved_concurrency=0))
    with pytest.raises(TooManyRequests):
        runtime.invoke("off", b"{}")
