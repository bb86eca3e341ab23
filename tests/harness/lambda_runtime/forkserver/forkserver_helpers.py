"""What the fork-server tests share: one function "app" registered from a code directory, its
answer, and waiting until the server has learnt something from a child."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime

__all__ = [
    "REGION", "Lines", "assert_learned_by_a_later_environment", "fork_server_pid", "invoke",
    "register",
]


REGION = "ap-southeast-1"


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, lines: list[str]) -> None:
        self.lines.extend(lines)


def register(rt: LambdaRuntime, code: Path, handler: str = "app.handler", **env: str) -> None:
    rt.register(
        FunctionConfig(
            name="app",
            arn=f"arn:aws:lambda:{REGION}:000000000000:function:app",
            handler=handler,
            code_dir=code,
            environment=dict(env),
        )
    )


def invoke(rt: LambdaRuntime) -> Any:
    result = rt.invoke("app", b"{}")
    assert result.function_error is None, result.payload
    return json.loads(result.payload)


def assert_learned_by_a_later_environment(rt: LambdaRuntime, code: Path, what: str) -> None:
    """The first environment answers False; a later new one (after the server learnt) True."""
    register(rt, code)
    assert invoke(rt) is False
    deadline = time.monotonic() + 30
    while True:  # the server reads the child's report between forks: allow a few
        register(rt, code)
        if invoke(rt) is True:
            return
        assert time.monotonic() < deadline, f"the fork server never had {what}"


def fork_server_pid(rt: LambdaRuntime) -> int:
    assert rt._forks is not None and rt._forks.pid is not None  # white-box: which parent
    return rt._forks.pid
