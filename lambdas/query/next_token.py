"""The opaque paging token: URL-safe base64 of JSON holding query type, id and LastEvaluatedKey."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

__all__ = ["InvalidNextTokenError", "decode_next_token", "encode_next_token"]

_VERSION = 1
_FAILED = "FAILED"

#: The LastEvaluatedKey attributes (and their DynamoDB types) each query type's pages carry:
#: the table key plus, on a GSI, the index key.
_KEY_SHAPES: dict[str, dict[str, str]] = {
    "user": {"user_id": "S", "created_at": "N"},
    "marketing": {"marketing_id": "S", "created_at": "N", "user_id": "S"},
    "fail": {"transaction_id": "S", "status": "S", "user_id": "S", "created_at": "N"},
}
#: Which key attribute must equal the request id.
_ID_ATTRIBUTE = {"user": "user_id", "marketing": "marketing_id", "fail": "transaction_id"}


class InvalidNextTokenError(Exception):
    """A next_token that is garbled or was issued for another query type or id."""

    code: Literal["InvalidNextToken"] = "InvalidNextToken"
    field: str | None = "next_token"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def encode_next_token(query_type: str, identifier: str, last_evaluated_key: dict[str, Any]) -> str:
    """Return the token that resumes this query after `last_evaluated_key` (DynamoDB JSON)."""
    document = {"v": _VERSION, "q": query_type, "id": identifier, "k": last_evaluated_key}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _load(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidNextTokenError("next_token is not a token this API issued") from None
    if not isinstance(document, dict) or set(document) != {"v", "q", "id", "k"}:
        raise InvalidNextTokenError("next_token is not a token this API issued")
    if document["v"] != _VERSION:
        raise InvalidNextTokenError("next_token is from an unsupported version; start again")
    return document


def _check_key(query_type: str, identifier: str, key: Any) -> dict[str, Any]:
    shape = _KEY_SHAPES[query_type]
    if not isinstance(key, dict) or set(key) != set(shape):
        raise InvalidNextTokenError("next_token is not a token this API issued")
    for name, kind in shape.items():
        value = key[name]
        if not isinstance(value, dict) or list(value) != [kind] or not isinstance(value[kind], str):
            raise InvalidNextTokenError("next_token is not a token this API issued")
        if kind == "N" and not value[kind].isdigit():
            raise InvalidNextTokenError("next_token is not a token this API issued")
    if key[_ID_ATTRIBUTE[query_type]]["S"] != identifier:
        raise InvalidNextTokenError("next_token was issued for a different query_type or id")
    if query_type == "fail" and key["status"]["S"] != _FAILED:
        raise InvalidNextTokenError("next_token is not a token this API issued")
    return key


def decode_next_token(token: str, query_type: str, identifier: str) -> dict[str, Any]:
    """Return the ExclusiveStartKey in `token`, checking it belongs to this query type and id."""
    document = _load(token)
    if document["q"] != query_type or document["id"] != identifier:
        raise InvalidNextTokenError("next_token was issued for a different query_type or id")
    return _check_key(query_type, identifier, document["k"])
