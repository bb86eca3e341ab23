"""What an Invoke request may carry and what it answers: AWS's limits, the errors the Invoke API
answers with a 4xx, the answer itself, and the checks of a payload and a client context (the
Lambda API reference, Invoke: 6 MB synchronous / 256 KB Event payloads, a 3,583-byte
base64 client context, InvalidRequestContentException for a body that is not JSON)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.environment import Outcome

__all__ = [
    "CLIENT_CONTEXT_LIMIT",
    "EVENT_PAYLOAD_LIMIT",
    "RESPONSE_TOO_LARGE",
    "SYNC_PAYLOAD_LIMIT",
    "TAIL_BYTES",
    "InvalidRequestContent",
    "InvokeResult",
    "LambdaRuntimeError",
    "RequestTooLarge",
    "ResourceNotFound",
    "TooManyRequests",
    "answer",
    "decoded_client_context",
    "invocation_header",
    "result_too_large",
    "validated_event",
]

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
EVENT_PAYLOAD_LIMIT = 256 * 1024
CLIENT_CONTEXT_LIMIT = 3583
#: The error type harness.lambda_runtime.environment gives a result over 6 MB.
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
#: The most of an invocation's log lines a LogType=Tail answer carries.
TAIL_BYTES = 4096


class LambdaRuntimeError(Exception):
    """Base of the errors the Invoke API answers with a 4xx."""


class ResourceNotFound(LambdaRuntimeError):
    """Unknown function (404 ResourceNotFoundException)."""


class TooManyRequests(LambdaRuntimeError):
    """Concurrency limit reached (429 TooManyRequestsException, with AWS's ``Reason``)."""

    def __init__(
        self, message: str, reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded"
    ) -> None:
        super().__init__(message)
        self.reason = reason


class RequestTooLarge(LambdaRuntimeError):
    """Payload over 6 MB sync / 256 KB Event (413 RequestTooLargeException)."""


class InvalidRequestContent(LambdaRuntimeError):
    """Payload or client context not valid JSON (400 InvalidRequestContentException)."""


@dataclass(frozen=True)
class InvokeResult:
    """The Invoke API's answer: status, payload and the X-Amz-* header values."""

    status_code: int
    payload: bytes
    function_error: str | None
    log_result: str | None
    executed_version: str = "$LATEST"
    request_id: str = ""


def validated_event(payload: bytes, limit: int) -> bytes:
    if len(payload) > limit:
        raise RequestTooLarge(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        )
    if not payload.strip():
        return b"{}"
    try:
        json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None
    return payload


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unrecognized token '{name}'")


def decoded_client_context(client_context: str | None) -> Any:
    if not client_context:
        return None
    if len(client_context) > CLIENT_CONTEXT_LIMIT:
        raise InvalidRequestContent(
            f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes (base64)"
        )
    try:
        context = json.loads(base64.b64decode(client_context, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestContent(
            f"Client context must be a valid Base64-encoded JSON object: {exc}"
        ) from None
    if not isinstance(context, dict):
        raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object")
    return context


def result_too_large(outcome: Outcome) -> bool:
    """The function returned normally, but more than the 6 MB a synchronous caller may get."""
    if outcome.ok or not outcome.payload.startswith(b"{"):
        return False
    try:
        return bool(json.loads(outcome.payload).get("errorType") == RESPONSE_TOO_LARGE)
    except ValueError:
        return False


def invocation_header(config: FunctionConfig, request_id: str, context: Any) -> bytes:
    """The invocation's header frame for the worker (worker.py): id, deadline, ARN, context."""
    deadline_ms = int(time.time() * 1000 + config.timeout_s * 1000)
    return json.dumps(
        {"id": request_id, "deadline_ms": deadline_ms, "arn": config.arn, "cc": context}
    ).encode()


def answer(request_id: str, outcome: Outcome, lines: list[str], tail: bool) -> InvokeResult:
    """A RequestResponse invocation's answer; with ``tail``, the end of its log ``lines``."""
    log_result = None
    if tail:
        text = ("\n".join(lines) + "\n").encode("utf-8")
        log_result = base64.b64encode(text[-TAIL_BYTES:]).decode("ascii")
    return InvokeResult(
        200,
        outcome.payload,
        None if outcome.ok else "Unhandled",
        log_result,
        request_id=request_id,
    )
