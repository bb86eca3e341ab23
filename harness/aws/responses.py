"""The AWS-shaped answers and state the moto patches hand back (errors, records, iterators)."""

from __future__ import annotations

import base64
import calendar
import json
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


def error_response(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    body = json.dumps({"__type": ERROR_PREFIX + code, "message": message})
    return status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}, body


def validation_message(exc: Exception) -> str:
    token = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if isinstance(token, str) and token.startswith(":"):
        return (
            "Invalid expression: An expression attribute value used in expression is not "
            f"defined; attribute value: {token}"
        )
    if isinstance(token, str) and token.startswith("#"):
        return (
            "Invalid expression: An expression attribute name used in the document path is "
            f"not defined; attribute name: {token}"
        )
    return f"Invalid request: {type(exc).__name__}: {exc}".rstrip(": ")


def with_event_source_arn(response: Any) -> Any:
    """Put eventSourceARN back on GetRecords records (moto's serializer drops fields it lacks)."""
    status, headers, body = response
    if status != 200:
        return response
    document = json.loads(body)
    stream_arn = str(document.get("NextShardIterator", "")).split("|", 1)[0]
    for record in document.get("Records", []):
        record.setdefault("eventSourceARN", stream_arn)
    headers = {k: v for k, v in headers.items() if k.lower() != "x-amz-crc32"}
    return status, headers, json.dumps(document)


class ShardIteratorStore(dict[str, Any]):
    """Shard iterators by ARN, dropped after `ttl_s` (as AWS does) or beyond `max_entries`."""

    max_entries = 1000
    ttl_s = 15 * 60.0

    def __init__(self) -> None:
        super().__init__()
        self._born: OrderedDict[str, float] = OrderedDict()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._born[key] = time.monotonic()
        self._born.move_to_end(key)
        self._evict()

    def get(self, key: str, default: Any = None) -> Any:
        """The live iterator for `key`, or `default` when unknown or expired."""
        self._evict()
        return super().get(key, default)

    def _evict(self) -> None:
        oldest_allowed = time.monotonic() - self.ttl_s
        while self._born:
            key, born = next(iter(self._born.items()))
            if len(self._born) <= self.max_entries and born >= oldest_allowed:
                break
            del self._born[key]
            self.pop(key, None)


def streams_error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError  # noqa: PLC0415

    return JsonRESTError(ERROR_PREFIX + code, message)


#: DynamoDB types whose value is already plain JSON data (no nested DynamoType inside).
_FLAT_TYPES = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def plain_items_result(result: Any, slow: Any) -> Any:
    """moto's ``dynamo_to_dict`` for a Query/Scan/GetItem answer, without its per-value recursion.

    Items whose attributes are all flat (``S``, ``N``, ``BOOL``, ``NULL``, ``SS``, ``NS``) are
    converted directly; anything else (maps, lists, binary) goes through ``slow`` as before.
    """
    if not isinstance(result, dict):
        return slow(result)
    out = {}
    for key, value in result.items():
        if key == "Items" and isinstance(value, list):
            out[key] = [plain_item(item, slow) for item in value]
        elif key == "Item" and isinstance(value, dict):
            out[key] = plain_item(value, slow)
        else:
            out[key] = slow(value)
    return out


def plain_item(attrs: dict[str, Any], slow: Any) -> Any:
    plain = {}
    for name, attr in attrs.items():
        kind = getattr(attr, "type", None)
        if kind not in _FLAT_TYPES:
            return slow(attrs)
        value = attr.value
        plain[name] = {kind: list(value) if isinstance(value, list) else value}
    return plain


def item_size(attrs: dict[str, Any]) -> int:
    """moto's ``Item.size()`` (the byte size DynamoDB's 1 MB page limit counts), computed directly.

    moto walks every value through ``DynamoType`` methods; this reads the same fields with the
    same arithmetic: names and strings as UTF-8 bytes, numbers as their text, booleans and nulls
    as 1, sets, lists and maps as the sum of their parts (map keys counted too).
    """
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in attrs.items())


def _value_size(value: Any) -> int:
    kind, raw = value.type, value.value
    if kind == "N":
        return len(str(raw))
    if kind in ("SS", "NS", "BS"):
        if kind == "NS":
            return sum(len(str(member)) for member in raw)
        return sum(_bytesize(member) for member in raw)
    if kind == "L":
        return sum(_value_size(member) for member in raw)
    if kind == "M":
        return sum(len(key.encode("utf-8")) + _value_size(member) for key, member in raw.items())
    if isinstance(raw, bool):
        return 1
    return _bytesize(raw)


def _bytesize(raw: Any) -> int:
    return len(raw if isinstance(raw, bytes) else raw.encode("utf-8"))


def wire_value(value: Any) -> Any:
    """``json.dumps(default=...)`` for a DynamoDB Streams answer: what moto's model serializer
    makes of a datetime (epoch seconds, truncated to milliseconds, a naive one read as UTC) and of
    bytes (base64 text)."""
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.utctimetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
