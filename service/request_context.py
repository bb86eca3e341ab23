"""ASGI middleware: request id in and out, one JSON access-log line, and the last-resort 500."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.error_handlers import error_response
from service.json_logging import request_id_var

logger = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-Id"
TRACE_ID_HEADER = "X-Amzn-Trace-Id"
_ACCEPTABLE_ID = re.compile(r"[\x21-\x7e]{1,200}")
#: the User-Agent of an ALB's health checks; their passing checks are logged at DEBUG only, or
#: one line per target per interval would fill the task's log
HEALTH_CHECKER_AGENT = "ELB-HealthChecker/"


def pick_request_id(headers: Headers) -> str:
    """X-Request-Id, else X-Amzn-Trace-Id, else a new uuid4; unusable values are replaced."""
    for name in (REQUEST_ID_HEADER, TRACE_ID_HEADER):
        value = headers.get(name, "").strip()
        if _ACCEPTABLE_ID.fullmatch(value):
            return value
    return str(uuid.uuid4())


class RequestContextMiddleware:
    """Assign the request id, echo it, log each request once, answer 500 for anything uncaught."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = pick_request_id(headers)
        health_check = headers.get("user-agent", "").startswith(HEALTH_CHECKER_AGENT)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error", extra={"path": scope.get("path")})
            if response_started:
                raise
            state["error_code"] = "InternalError"
            response = error_response(
                500, "InternalError", "internal error; quote the request id", request_id
            )
            await response(scope, receive, send_with_id)
        finally:
            logger.log(
                logging.DEBUG if health_check and status < 400 else logging.INFO,
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "error_code": state.get("error_code"),
                },
            )
            request_id_var.reset(token)
