"""What the runtime tests share: fixture handlers' configs, a log sink that remembers, JSON invoke."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime

__all__ = [
    "ENDPOINT", "FIXTURES", "REGION", "LogCollector", "config_factory", "invoke_json", "worker_pids",
]

FIXTURES = Path(__file__).parent / "fixtures_lambda"
REGION = "ap-southeast-1"
ENDPOINT = "http://127.0.0.1:4566"


class LogCollector:
    """A log sink that remembers what it was given."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, lines: list[str]) -> None:
        with self._cond:
            self.batches.append((name, lines))
            self._cond.notify_all()

    def wait_for(self, request_id: str, timeout_s: float = 10.0) -> list[str]:
        """The lines of the invocation with this request id (init lines to REPORT), once
        delivered; a batch may hold several invocations of a function."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for _, lines in self.batches:
                    if f"START RequestId: {request_id} Version: $LATEST" in lines:
                        return _invocation_lines(lines, request_id)
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no log lines for {request_id}"
                self._cond.wait(remaining)


def _invocation_lines(lines: list[str], request_id: str) -> list[str]:
    start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
    first = start
    while first > 0 and not lines[first - 1].startswith("REPORT RequestId: "):
        first -= 1  # the init lines of this invocation's environment come before its START
    report = f"REPORT RequestId: {request_id}\t"
    last = next(i for i in range(start, len(lines)) if lines[i].startswith(report))
    return lines[first : last + 1]


def config_factory(name: str, handler: str, **kwargs: Any) -> FunctionConfig:
    """A FunctionConfig for a fixture handler."""
    kwargs.setdefault("code_dir", FIXTURES)
    kwargs.setdefault("environment", {"STAGE": "test"})
    return FunctionConfig(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:000000000000:function:{name}",
        handler=handler,
        **kwargs,
    )


def invoke_json(rt: LambdaRuntime, name: str, event: Any = None, **kwargs: Any) -> Any:
    """Invoke synchronously and decode the payload."""
    payload = b"" if event is None else json.dumps(event).encode()
    result = rt.invoke(name, payload, **kwargs)
    assert result.status_code == 200
    return json.loads(result.payload)


def worker_pids(rt: LambdaRuntime) -> set[int]:
    """Pids of the runtime's live workers (white-box: for process-lifecycle tests)."""
    return {worker.process.pid for worker in rt._live}
