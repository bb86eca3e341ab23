"""The Invoke API's HTTP answers: what an Invoke request that passed its checks runs and how it
is answered (status, payload, X-Amz-* headers), and the 4xx for an error the runtime raised.
:mod:`api.py <harness.lambda_runtime.api>` prepares the calls and runs them on the runtime.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from harness.aws.moto_app import HttpResponse, json_error
from harness.lambda_runtime.invocation import (
    InvokeResult,
    LambdaRuntimeError,
    RequestTooLarge,
    ResourceNotFound,
    TooManyRequests,
)

__all__ = ["PreparedInvoke", "error_response", "invoke_answer", "runtime_error_answer"]


@dataclass(frozen=True)
class PreparedInvoke:
    """An Invoke request that passed its checks: what to run and how to answer."""

    arn: str
    kind: str  # "invocations" or the old "invoke-async"
    executed: str  # X-Amz-Executed-Version
    invocation_type: str
    client_context: str | None
    tail: bool  # LogType=Tail on a RequestResponse call


def invoke_answer(call: PreparedInvoke, result: InvokeResult) -> HttpResponse:
    """The HTTP answer of an invocation the runtime ran (or queued)."""
    headers = [
        ("Content-Type", "application/json"),
        ("X-Amz-Executed-Version", call.executed),
        ("x-amzn-RequestId", result.request_id or str(uuid.uuid4())),
    ]
    if result.function_error:
        headers.append(("X-Amz-Function-Error", result.function_error))
    if result.log_result is not None:
        headers.append(("X-Amz-Log-Result", result.log_result))
    if call.kind == "invoke-async":
        return HttpResponse(202, headers, b'{"Status": 202}')
    return HttpResponse(result.status_code, headers, result.payload)


def runtime_error_answer(exc: LambdaRuntimeError, arn: str) -> HttpResponse:
    """The Invoke API's 4xx for an error the runtime raised."""
    if isinstance(exc, ResourceNotFound):
        return error_response(
            404, "ResourceNotFoundException", str(exc) or f"Function not found: {arn}"
        )
    if isinstance(exc, TooManyRequests):
        response = error_response(
            429, "TooManyRequestsException", str(exc) or "Rate Exceeded.", Reason=exc.reason
        )
        response.headers.append(("Retry-After", "1"))
        return response
    if isinstance(exc, RequestTooLarge):
        return error_response(
            413,
            "RequestTooLargeException",
            str(exc) or "Request must be smaller than 6291456 bytes for the Invoke operation",
        )
    return error_response(
        400,
        "InvalidRequestContentException",
        str(exc) or "Could not parse request body into json",
    )


def error_response(status: int, code: str, message: str, **extra: str) -> HttpResponse:
    """moto's JSON error answer, with ``extra`` fields added to its body."""
    response = json_error(status, code, message)
    if extra:
        payload = json.loads(response.body)
        payload.update(extra)
        response.body = json.dumps(payload).encode()
    return response
