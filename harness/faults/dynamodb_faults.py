"""DynamoDB faults on the endpoint's request path: throttling errors, and a watch on write order.

:meth:`DynamoDBFaults.around` wraps the endpoint's call to moto for one request. A ``throttle``
fault answers, for the given fraction of requests on its table (and operations), what DynamoDB
answers a request over its throughput: HTTP 400, ``Content-Type: application/x-amz-json-1.0``,
``{"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
"message": ...}`` (or ``ThrottlingException``), and nothing is written. botocore's ``standard``
retry mode, which the Lambdas (``lambdas/dynamodb_client.py``: 3 retries) and the service's
Lambda client use, classes both codes as throttling errors and retries them with its throttling
backoff (``rand(0, 1) * min(2 ** attempt, 20)`` s) and its retry quota; past the attempts the
call raises and the stream processor reports the record in ``batchItemFailures``. Not copied:
the ``ThrottlingReasons`` list newer DynamoDB responses carry (botocore ignores it).

A ``watch`` counts successful ``PutItem`` writes (and ``BatchWriteItem`` puts) on its table whose
attribute (default ``source_sequence``) is lower than one already written for the same key: an
older image written over a newer one, which the stream processor's conditional write prevents
(``fired``). A put that re-creates an item deleted since a newer put is counted apart
(``resurrected``): a redelivered older INSERT/MODIFY after the REMOVE was applied, which a
condition on the item cannot see once the item is gone; the redelivered REMOVE deletes it again.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from harness.faults.registry import Fault, FaultRegistry

__all__ = ["DynamoDBFaults", "request_tables"]

_PARTIQL_TABLE = re.compile(r'(?i)\b(?:FROM|INTO|UPDATE)\s+"?([A-Za-z0-9_.-]+)"?')
_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
}


class _Answer(Protocol):
    status: int


R = TypeVar("R", bound=_Answer)


def request_tables(action: str, document: dict[str, Any]) -> list[str]:
    """The tables one DynamoDB data-plane request names."""
    names: list[str] = []
    if isinstance(document.get("TableName"), str):
        names.append(document["TableName"])
    if isinstance(document.get("RequestItems"), dict):
        names.extend(str(name) for name in document["RequestItems"])
    for entry in document.get("TransactItems", []) or []:
        if isinstance(entry, dict):
            names.extend(
                str(op["TableName"])
                for op in entry.values()
                if isinstance(op, dict) and "TableName" in op
            )
    statements = [document.get("Statement", "")]
    for key in ("Statements", "TransactStatements"):
        statements += [s.get("Statement", "") for s in document.get(key, []) or []]
    names += [m for s in statements if isinstance(s, str) for m in _PARTIQL_TABLE.findall(s)]
    return list(dict.fromkeys(names))


class DynamoDBFaults:
    """Throttles and watches DynamoDB requests as the registry's faults say."""

    def __init__(self, registry: FaultRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._latest: dict[str, dict[tuple[str, ...], str | float]] = {}
        self._deleted: dict[str, set[tuple[str, ...]]] = {}

    def around(
        self,
        target: str,
        body: bytes,
        forward: Callable[[], R],
        reject: Callable[[int, str, str], R],
    ) -> R:
        """Answer one request: a throttling error, or ``forward()`` (then watch what it wrote)."""
        registry = self._registry
        if not target.startswith("DynamoDB_") or not (
            registry.has("throttle") or registry.has("watch")
        ):
            return forward()
        action = target.rsplit(".", 1)[-1]
        document = _json(body)
        tables = request_tables(action, document)
        for table in tables:
            for fault in registry.for_table("throttle", table):
                operations = fault.spec.operations
                if operations and action not in operations:
                    continue
                if fault.roll():
                    fault.fire()
                    error = fault.spec.error
                    return reject(
                        400, f"com.amazonaws.dynamodb.v20120810#{error}", _MESSAGES[error]
                    )
        response = forward()
        if response.status == 200 and action in ("PutItem", "DeleteItem", "BatchWriteItem"):
            for table in tables:
                for fault in registry.for_table("watch", table):
                    self._watch(fault, table, _writes(action, table, document))
        return response

    def _watch(
        self, fault: Fault, table: str, writes: Iterator[tuple[bool, dict[str, Any]]]
    ) -> None:
        keys = tuple(self._registry.key_attributes(table))
        attribute = fault.spec.attribute
        if not keys:
            return
        with self._lock:
            latest = self._latest.setdefault(fault.id, {})
            deleted = self._deleted.setdefault(fault.id, set())
            for is_put, item in writes:
                key = tuple(str(_scalar(item.get(name))) for name in keys)
                if not is_put:
                    deleted.add(key)
                    continue
                value = _scalar(item.get(attribute))
                if value is None:
                    continue
                fault.seen += 1
                before = latest.get(key)
                if before is not None and _lower(value, before):
                    if key in deleted:  # re-created from older images until a newer one lands
                        fault.counts["resurrected"] += 1
                    else:
                        fault.fire()
                    continue
                deleted.discard(key)
                latest[key] = value


def _writes(
    action: str, table: str, document: dict[str, Any]
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """(is a put, item or key) for each item a successful write request changed."""
    if action in ("PutItem", "DeleteItem"):
        item = document.get("Item" if action == "PutItem" else "Key")
        if isinstance(item, dict):
            yield action == "PutItem", item
        return
    for request in (document.get("RequestItems") or {}).get(table, []) or []:
        if not isinstance(request, dict):
            continue
        put, delete = request.get("PutRequest"), request.get("DeleteRequest")
        if isinstance(put, dict) and isinstance(put.get("Item"), dict):
            yield True, put["Item"]
        elif isinstance(delete, dict) and isinstance(delete.get("Key"), dict):
            yield False, delete["Key"]


def _scalar(typed: Any) -> str | float | None:
    if not isinstance(typed, dict) or len(typed) != 1:
        return None
    ((kind, value),) = typed.items()
    if kind == "N":
        return float(value)
    return str(value) if kind == "S" else None


def _lower(value: str | float, before: str | float) -> bool:
    if isinstance(value, float) and isinstance(before, float):
        return value < before
    return str(value) < str(before)


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
