"""Request and response models of the HTTP API (the OpenAPI contract is generated from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

ID_MAX_LENGTH = 256
"""Characters; 256 code points are at most 1024 UTF-8 bytes, DynamoDB's key limit."""

NEXT_TOKEN_MAX_LENGTH = 4096
LIMIT_DEFAULT = 50
LIMIT_MAX = 100


def _encodable(value: str) -> str:
    """Reject strings that cannot be UTF-8 encoded (lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


def _integral_float_as_int(value: object) -> object:
    """JSON Schema counts 5.0 as an integer, so accept it as 5 (strings and booleans stay out)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _stripped_id(value: str) -> str:
    """Strip surrounding whitespace; what is left must not be empty."""
    stripped = _encodable(value).strip()
    if not stripped:
        raise ValueError("must contain a non-blank character")
    return stripped


# The raw value is checked against the documented schema (maxLength, pattern "\S" = "contains a
# non-blank"; JSON-Schema patterns are unanchored), then stripped. Validation is done in Python
# (str.strip / str.isspace) so that it agrees with Python's `re` "\S" that fuzzers use.
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=ID_MAX_LENGTH, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_stripped_id),
]
Limit = Annotated[
    int,
    Field(ge=1, le=LIMIT_MAX, strict=True, description="Records per page."),
    BeforeValidator(_integral_float_as_int),
]
_Token = Annotated[
    str, Field(min_length=1, max_length=NEXT_TOKEN_MAX_LENGTH), AfterValidator(_encodable)
]
NextToken = Annotated[
    _Token | None,
    Field(description="Opaque token from a previous page; null or absent for the first page."),
]


class _QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Limit = LIMIT_DEFAULT
    next_token: NextToken = None


class UserQueryRequest(_QueryRequest):
    """Body of POST /query/user: a user's records, newest first."""

    user_id: Identifier


class MarketingQueryRequest(_QueryRequest):
    """Body of POST /query/marketing: a campaign's records."""

    marketing_id: Identifier


class FailQueryRequest(_QueryRequest):
    """Body of the fail query: the FAILED records of a transaction."""

    transaction_id: Identifier


class NotificationRecord(BaseModel):
    """One notification as the read side holds it; every key is always present."""

    model_config = ConfigDict(extra="ignore")

    user_id: str
    created_at: int = Field(description="Epoch milliseconds.")
    transaction_id: str
    marketing_id: str | None
    ap_id: str | None = Field(description="Source application id; null for records before V3.")
    notification_title: str
    status: Literal["SENT", "DELIVERED", "FAILED"]
    platform: Literal["IOS", "ANDROID", "WEBPUSH"]
    error_msg: str | None


class QueryResponse(BaseModel):
    """A page of records."""

    records: list[NotificationRecord]
    count: int = Field(ge=0, description="Number of records in this page.")
    next_token: str | None = Field(description="Token for the next page; null on the last page.")


class FieldError(BaseModel):
    """One reason a request was refused."""

    field: str
    message: str


class ErrorResponse(BaseModel):
    """Body of every error answer."""

    code: str
    message: str
    request_id: str
    errors: list[FieldError]


class HealthResponse(BaseModel):
    """Liveness answer."""

    status: Literal["ok"]
    service: str
    version: str
