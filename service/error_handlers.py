"""Exception handlers: every error answer is an `ErrorResponse` JSON body, never HTML or a trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import QueryError
from service.models import ErrorResponse, FieldError

logger = logging.getLogger("service.errors")

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def error_response(
    status_code: int,
    code: str,
    message: str,
    request_id: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Build the JSON answer for an error."""
    body = ErrorResponse(code=code, message=message, request_id=request_id, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def request_id_of(request: Request) -> str:
    """The request id the middleware assigned (empty if the middleware did not run)."""
    return str(getattr(request.state, "request_id", ""))


def field_name(loc: Sequence[Any], error_type: str) -> str:
    """Name the offending field: `user_id`, `limit`, or `body` for the body as a whole."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        location = str(parts.pop(0))
    else:
        location = "body"
    if error_type == "json_invalid" or not parts:
        return location
    return ".".join(str(part) for part in parts)


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    """One `FieldError` per pydantic error, with the field named and the reason given."""
    result: list[FieldError] = []
    for error in exc.errors():
        error_type = str(error.get("type", ""))
        field = field_name(error.get("loc", ()), error_type)
        message = str(error.get("msg", "invalid value"))
        if error_type == "json_invalid":
            reason = (error.get("ctx") or {}).get("error")
            message = f"body is not valid JSON: {reason}" if reason else "body is not valid JSON"
        elif error_type == "missing" and field == "body":
            message = "a JSON object body is required"
        result.append(FieldError(field=field, message=message))
    return result


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    fields = ", ".join(dict.fromkeys(error.field for error in errors))
    request.state.error_code = "ValidationError"
    return error_response(
        422, "ValidationError", f"invalid request: {fields}", request_id_of(request), errors
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.title().replace(" ", "").replace("-", "")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    request.state.error_code = code
    return error_response(
        exc.status_code, code, message, request_id_of(request), headers=exc.headers
    )


async def _on_query_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    errors = [FieldError(field=exc.field, message=exc.message)] if exc.field else []
    request.state.error_code = exc.code
    return error_response(exc.status_code, exc.code, exc.message, request_id_of(request), errors)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers for validation, HTTP and query errors on `app`."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(QueryError, _on_query_error)
