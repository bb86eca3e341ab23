"""harness.lambda_runtime.runtime called directly (no HTTP): Event invocations and their retries,
the log lines, code updates, reset, prewarm and process lifecycle."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import harness.lambda_runtime.logs as lambda_logs
from harness.lambda_runtime.runtime import (
    InvalidRequestContent,
    LambdaRuntime,
    RequestTooLarge,
    ResourceNotFound,
    TooManyRequests,
)
from tests.harness.lambda_runtime.runtime_helpers import (
    ENDPOINT,
    REGION,
    LogCollector,
    config_factory,
    invoke_json,
    worker_pids,
)


def test_event_invoke_on_error_is_retried_twice(runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.register(config_factory("retry", "handlers.record_then_fail"))
    record = tmp_path / "calls.txt"
    result = runtime.invoke(
        "retry", json.dumps({"path": str(record)}).encode(), invocation_type="Event"
    )
    assert (result.status_code, result.payload, result.function_error) == (202, b"", None)
    assert runtime.wait_for_events(30)
    calls = record.read_text().splitlines()
    assert calls == [result.request_id] * 3


def test_event_invoke_result_over_6mb_is_discarded_not_retried(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    runtime.register(config_factory("huge", "handlers.huge_counted"))
    record = tmp_path / "calls.txt"
    result = runtime.invoke(
        "huge", json.dumps({"path": str(record)}).encode(), invocation_type="Event"
    )
    assert result.status_code == 202
    assert runtime.wait_for_events(30)
    assert record.read_text().splitlines() == [result.request_id]  # ran once: a success


def test_reset_drops_functions_workers_and_queued_event_retries(tmp_path: Path) -> None:
    with LambdaRuntime(endpoint_url=ENDPOINT, region=REGION,
                       event_retry_delays_s=(1.0, 1.0)) as runtime:
        runtime.register(config_factory("retry", "handlers.record_then_fail"))
        record = tmp_path / "calls.txt"
        runtime.invoke("retry", json.dumps({"path": str(record)}).encode(),
                       invocation_type="Event")
        deadline = time.monotonic() + 30
        # the first attempt ran (its line is written: the file exists a moment before it is);
        # its retry is due 1 s later
        while not (record.exists() and record.read_text().endswith("\n")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        runtime.reset()
        assert runtime.functions() == [] and runtime.wait_for_events(5)
        time.sleep(2.5)  # both retries would have run by now
        assert len(record.read_text().splitlines()) == 1
        assert not runtime._live
        with pytest.raises(ResourceNotFound):
            runtime.invoke("retry", b"{}")
        runtime.register(config_factory("echo", "handlers.echo"))  # still open
        assert invoke_json(runtime, "echo")["function_name"] == "echo"


def test_event_invoke_success_runs_once_and_logs(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("chatty", "handlers.chatty"))
    result = runtime.invoke("chatty", b"{}", invocation_type="Event")
    assert result.status_code == 202
    assert runtime.wait_for_events(30)
    assert "hello from stdout" in logs.wait_for(result.request_id)
    starts = [line for _, lines in logs.batches for line in lines if line.startswith("START")]
    assert len(starts) == 1


def test_dry_run_validates_the_function_and_runs_nothing(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    result = runtime.invoke("echo", b"{}", invocation_type="DryRun")
    assert (result.status_code, result.payload, result.function_error) == (204, b"", None)
    assert worker_pids(runtime) == set()
    with pytest.raises(ResourceNotFound):
        runtime.invoke("nope", b"{}", invocation_type="DryRun")


def test_invoke_unknown_function_is_resource_not_found(runtime: LambdaRuntime) -> None:
    with pytest.raises(ResourceNotFound):
        runtime.invoke("nope", b"{}")


def test_invoke_unknown_invocation_type_is_invalid_request(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    with pytest.raises(InvalidRequestContent):
        runtime.invoke("echo", b"{}", invocation_type="Later")


def test_invoke_payload_over_limits_is_too_large(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    sync_too_big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    event_too_big = b'"' + b"x" * (256 * 1024) + b'"'
    with pytest.raises(RequestTooLarge):
        runtime.invoke("echo", sync_too_big)
    with pytest.raises(RequestTooLarge):
        runtime.invoke("echo", event_too_big, invocation_type="Event")
    assert runtime.invoke("echo", event_too_big).function_error is None


@pytest.mark.parametrize("payload", [b"{not json", b"NaN", b"\xff\xfe{}", b'{"a": 1} x'])
def test_invoke_payload_not_json_is_invalid_request(runtime: LambdaRuntime, payload: bytes) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    with pytest.raises(InvalidRequestContent):
        runtime.invoke("echo", payload)


def test_invoke_logs_have_start_user_lines_end_report(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("chatty", "handlers.chatty", memory_mb=192))
    result = runtime.invoke("chatty", b"{}")
    rid = result.request_id
    lines = logs.wait_for(rid)
    assert logs.batches[-1][0].endswith(":function:chatty")
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert lines[:start] == ["init: handlers module imported"]
    assert lines[start + 1 : start + 5] == [
        "hello from stdout",
        "second line",
        "third line",
        "hello from stderr",
    ]
    warning = lines[start + 5].split("\t")
    assert warning[0] == "[WARNING]" and warning[2] == rid and warning[3] == "a warning via logging"
    assert lines[-2] == f"END RequestId: {rid}"
    report = lines[-1].split("\t")
    assert report[0] == f"REPORT RequestId: {rid}"
    assert report[1].startswith("Duration: ") and report[1].endswith(" ms")
    assert report[2].startswith("Billed Duration: ")
    assert report[3] == "Memory Size: 192 MB"
    used = int(report[4].removeprefix("Max Memory Used: ").removesuffix(" MB"))
    assert used > 5
    assert report[5].startswith("Init Duration: ")
    assert not any("below the default level" in line for line in lines)


def test_invoke_logs_queued_together_are_delivered_in_one_sink_call(
    runtime: LambdaRuntime, logs: LogCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    logs.wait_for(runtime.invoke("echo", b"{}").request_id)  # warm, and its logs delivered
    delivered = len(logs.batches)
    monkeypatch.setattr(lambda_logs, "LOG_FLUSH_S", 2.0)  # a wide window, not a race
    ids = [runtime.invoke("echo", b"{}").request_id for _ in range(4)]
    for rid in ids:
        assert logs.wait_for(rid)[-1].startswith(f"REPORT RequestId: {rid}\t")
    assert len(logs.batches) == delivered + 1
    assert [line for line in logs.batches[-1][1] if line.startswith("START")] == [
        f"START RequestId: {rid} Version: $LATEST" for rid in ids
    ]


def test_invoke_tail_returns_last_4kb_of_the_log(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("big", "handlers.big_log"))
    result = runtime.invoke("big", b"{}", tail=True)
    assert result.log_result is not None
    tail = base64.b64decode(result.log_result)
    assert len(tail) == 4096
    text = tail.decode()
    assert "line 0199" in text and "line 0000" not in text
    assert text.rstrip("\n").splitlines()[-1].startswith(f"REPORT RequestId: {result.request_id}")
    assert runtime.invoke("big", b"{}", invocation_type="Event").log_result is None


def test_register_again_uses_new_code_and_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "app.py").write_text(
            "import os\n"
            f"def handler(event, context):\n    return ['{version}', os.environ['COLOUR']]\n"
        )
    runtime.register(
        config_factory(
            "app", "app.handler", code_dir=tmp_path / "v1", environment={"COLOUR": "red"}
        )
    )
    assert invoke_json(runtime, "app") == ["v1", "red"]
    old = worker_pids(runtime)
    runtime.register(
        config_factory(
            "app", "app.handler", code_dir=tmp_path / "v2", environment={"COLOUR": "blue"}
        )
    )
    assert invoke_json(runtime, "app") == ["v2", "blue"]
    assert not old & worker_pids(runtime)
    assert not any(psutil.pid_exists(pid) for pid in old)


def test_unregister_stops_workers_and_forgets_the_function(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    invoke_json(runtime, "echo")
    pids = worker_pids(runtime)
    runtime.unregister("echo")
    assert not any(psutil.pid_exists(pid) for pid in pids)
    with pytest.raises(ResourceNotFound):
        runtime.invoke("echo", b"{}")
    with pytest.raises(ResourceNotFound):
        runtime.unregister("echo")


def test_invoke_concurrently_from_many_threads_all_succeed(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("echo", "handlers.echo", reserved_concurrency=4))
    outcomes: list[str] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        for _ in range(20):
            while True:
                try:
                    body = invoke_json(runtime, "echo", {"i": i})
                    break
                except TooManyRequests:
                    time.sleep(0.001)
            with lock:
                outcomes.append(f"{body['event']['i']}:{body['aws_request_id']}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(set(outcomes)) == 120
    assert len(worker_pids(runtime)) <= 4


def test_log_sink_failure_is_reported_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    def broken_sink(name: str, lines: list[str]) -> None:
        raise RuntimeError("sink down")

    with LambdaRuntime(endpoint_url=ENDPOINT, region=REGION, log_sink=broken_sink) as rt:
        rt.register(config_factory("echo", "handlers.echo"))
        assert invoke_json(rt, "echo")["function_name"] == "echo"
        assert invoke_json(rt, "echo")["function_name"] == "echo"
    assert "log sink failed for arn:aws:lambda:" in caplog.text and ":function:echo" in caplog.text


def test_close_leaves_no_child_process(tmp_path: Path) -> None:
    rt = LambdaRuntime(endpoint_url=ENDPOINT, region=REGION)
    rt.register(config_factory("echo", "handlers.echo"))
    rt.register(config_factory("block", "handlers.block", timeout_s=60))
    invoke_json(rt, "echo")
    busy = threading.Thread(
        target=rt.invoke, args=("block", json.dumps({"dir": str(tmp_path)}).encode())
    )
    busy.start()
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("started-*")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pids = worker_pids(rt)
    assert len(pids) == 2
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    assert pids <= children
    rt.close()
    busy.join(30)
    assert not busy.is_alive()
    assert not any(psutil.pid_exists(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        rt.invoke("echo", b"{}")


def test_other_interpreter_still_reaches_the_project_packages(tmp_path: Path) -> None:
    (tmp_path / "uses_libs.py").write_text(
        "import sys\nimport boto3\n"
        "def handler(event, context):\n    return [sys.executable, boto3.__name__]\n"
    )
    base_python = getattr(sys, "_base_executable", sys.executable)
    with LambdaRuntime(endpoint_url=ENDPOINT, region=REGION, python=base_python) as rt:
        rt.register(config_factory("libs", "uses_libs.handler", code_dir=tmp_path))
        executable, module = invoke_json(rt, "libs")
    assert (executable, module) == (base_python, "boto3")


def test_invoke_response_over_6mb_is_a_function_error(runtime: LambdaRuntime) -> None:
    runtime.register(config_factory("huge", "handlers.huge"))
    result = runtime.invoke("huge", b"{}")
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in error["errorMessage"]


def test_prewarm_starts_one_environment_that_the_first_invocation_uses(
    runtime: LambdaRuntime, logs: LogCollector
) -> None:
    runtime.register(config_factory("echo", "handlers.echo"))
    runtime.prewarm("echo")
    (pid,) = worker_pids(runtime)
    runtime.prewarm("echo")  # it has an environment already: no second one
    assert worker_pids(runtime) == {pid}
    waited_s = 1.5
    time.sleep(waited_s)  # initialises meanwhile; the wait is not init time
    result = runtime.invoke("echo", b'{"k": 1}')
    assert json.loads(result.payload)["event"] == {"k": 1}
    assert worker_pids(runtime) == {pid}
    report = logs.wait_for(result.request_id)[-1].split("\t")
    init_ms = float(report[5].removeprefix("Init Duration: ").removesuffix(" ms"))
    assert 0 < init_ms < waited_s * 1000


def test_prewarm_unknown_function_is_resource_not_found(runtime: LambdaRuntime) -> None:
    with pytest.raises(ResourceNotFound):
        runtime.prewarm("nope")
