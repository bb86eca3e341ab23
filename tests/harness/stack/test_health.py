"""Readiness probes and Lambda start-up errors (issue 11, points 3 and 5)."""

from __future__ import annotations

import io
import json
from typing import Any

from harness.stack.health import Check, function_start_errors, not_ready, read_path


class FakeLambda:
    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        error = self.answers.get(FunctionName)
        if error is None:
            return {"StatusCode": 200, "Payload": io.BytesIO(b'{"ok": false}')}
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": io.BytesIO(json.dumps(error).encode()),
        }


def test_function_start_errors_reports_import_errors_only() -> None:
    client = FakeLambda(
        {
            "query-lambda": {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": "Unable to import module 'lambdas.query.handler': "
                "No module named 'pydantic_core._pydantic_core'",
            },
            "stream-processor": {"errorType": "KeyError", "errorMessage": "'Records'"},
        }
    )
    problems = function_start_errors(client, ["query-lambda", "stream-processor"])
    assert problems == [
        "query-lambda: Runtime.ImportModuleError: Unable to import module "
        "'lambdas.query.handler': No module named 'pydantic_core._pydantic_core'"
    ]


def test_read_path_unreachable_gateway_is_not_ready() -> None:
    check = read_path("http://127.0.0.1:1/v1", timeout_s=2)
    assert not check.ok and "unreachable" in check.detail
    assert not_ready([check, Check("x", True, "200")]) == [check]
