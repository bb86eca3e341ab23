"""The query Lambda's request: validated against contracts' query-request JSON Schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

__all__ = ["DEFAULT_LIMIT", "MAX_ID_BYTES", "InvalidRequestError", "QueryRequest", "parse_request"]

QueryType = Literal["user", "marketing", "fail"]

DEFAULT_LIMIT = 50
MAX_ID_BYTES = 1024
_MAX_MESSAGE = 300

#: The schema ships inside the package; a test proves it equals contracts/schemas/query-request.
SCHEMA: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("query-request.schema.json").read_text(encoding="utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA)


class InvalidRequestError(Exception):
    """A payload that does not follow the query-request contract (code InvalidRequest)."""

    code: Literal["InvalidRequest"] = "InvalidRequest"

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class QueryRequest:
    """A validated query: which query, for which id, how many records, from where."""

    query_type: QueryType
    id: str
    limit: int = DEFAULT_LIMIT
    next_token: str | None = None


def _field_of(error: ValidationError) -> str | None:
    """Name the top-level payload key an error is about (None for the payload as a whole)."""
    if error.path:
        return str(error.path[0])
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return str(missing[0]) if missing else None
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        unknown = sorted(str(name) for name in instance if name not in SCHEMA["properties"])
        return unknown[0] if unknown else None
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def parse_request(event: Any) -> QueryRequest:
    """Validate a direct-invocation payload and return it as a QueryRequest."""
    error = best_match(_VALIDATOR.iter_errors(event))
    if error is not None:
        field = _field_of(error)
        message = error.message
        if error.validator == "pattern":
            message = "must not start or end with whitespace"
        if error.path:
            message = f"{field}: {message}"
        raise InvalidRequestError(_shorten(message), field)
    identifier: str = event["id"]
    try:
        size = len(identifier.encode("utf-8"))
    except UnicodeEncodeError:
        message = "id: must be valid Unicode text (no lone surrogates)"
        raise InvalidRequestError(message, "id") from None
    if size > MAX_ID_BYTES:
        raise InvalidRequestError(
            f"id: must be at most {MAX_ID_BYTES} bytes of UTF-8, got {size}", "id"
        )
    return QueryRequest(
        query_type=event["query_type"],
        id=identifier,
        limit=event.get("limit", DEFAULT_LIMIT),
        next_token=event.get("next_token"),
    )
