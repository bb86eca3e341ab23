"""A fault's specification: what it does, where it applies, how often; checked before it lives.

A spec is a JSON object, e.g. ``{"kind": "fail", "function": "stream-processor", "fraction": 0.1}``
or ``{"kind": "throttle", "table": "notification-records", "operations": ["PutItem"],
"fraction": 0.05}``. :func:`parse_spec` turns it into a :class:`FaultSpec` or raises
:class:`FaultSpecError` with one line saying what is wrong (the control API answers it as a 400,
the CLI prints it). Whether the named function or table exists is checked by the registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

__all__ = [
    "DYNAMODB_OPERATIONS",
    "FUNCTION_KINDS",
    "KINDS",
    "THROTTLE_ERRORS",
    "FaultSpec",
    "FaultSpecError",
    "KeyPattern",
    "parse_spec",
]

#: kind -> what it does (also the CLI's help)
KINDS: dict[str, str] = {
    "fail": "the function fails (mode unhandled: an error; partial: batchItemFailures naming "
    "the record) for a fraction of invocations, or always for records matching keys (poison)",
    "delay": "the function's worker is paused for delay_ms at the start of an invocation",
    "timeout": "the function's worker is paused past the function's timeout (Sandbox.Timedout)",
    "kill-worker": "the function's worker process is SIGKILLed delay_ms into an invocation",
    "throttle": "DynamoDB requests on a table answer ProvisionedThroughputExceededException or "
    "ThrottlingException (HTTP 400)",
    "restart-poller": "the stream pollers of the function's mappings are stopped and started "
    "again from their checkpoints (fires once, when added)",
    "watch": "not a fault: counts writes to a table whose attribute (source_sequence) is lower "
    "than one already written for the same key (an older image over a newer one)",
}
FUNCTION_KINDS = frozenset({"fail", "delay", "timeout", "kill-worker"})
FAIL_MODES = ("unhandled", "partial")
THROTTLE_ERRORS = ("ProvisionedThroughputExceededException", "ThrottlingException")
#: DynamoDB actions a throttle may be scoped to (the data plane; the control plane is not throttled)
DYNAMODB_OPERATIONS = frozenset(
    """
    GetItem PutItem UpdateItem DeleteItem Query Scan BatchGetItem BatchWriteItem
    TransactGetItems TransactWriteItems ExecuteStatement BatchExecuteStatement ExecuteTransaction
    """.split()
)
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,254}$")
_FIELDS = {
    "kind", "function", "table", "operations", "error", "mode", "keys", "fraction",
    "delay_ms", "count", "seed", "attribute",
}  # fmt: skip


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message is one line saying why."""


@dataclass(frozen=True)
class KeyPattern:
    """``attribute=glob``: matches a record whose attribute's value matches the glob."""

    attribute: str
    glob: str

    @classmethod
    def parse(cls, text: object) -> KeyPattern:
        """Parse ``transaction_id=poison-*``; raise FaultSpecError when malformed."""
        if not isinstance(text, str) or "=" not in text:
            raise FaultSpecError(
                f"malformed key pattern {text!r}: expected attribute=glob, "
                "e.g. transaction_id=poison-*"
            )
        attribute, glob = (part.strip() for part in text.split("=", 1))
        if not _ATTRIBUTE.match(attribute):
            raise FaultSpecError(f"malformed key pattern {text!r}: bad attribute name")
        if not glob:
            raise FaultSpecError(f"malformed key pattern {text!r}: the glob is empty")
        if glob.count("[") != glob.count("]"):
            raise FaultSpecError(f"malformed key pattern {text!r}: unbalanced [ ] in the glob")
        return cls(attribute, glob)

    def matches(self, values: Mapping[str, str]) -> bool:
        """True when ``values`` holds the attribute with a matching value."""
        value = values.get(self.attribute)
        return value is not None and fnmatchcase(value, self.glob)

    def __str__(self) -> str:
        return f"{self.attribute}={self.glob}"


@dataclass(frozen=True)
class FaultSpec:
    """One checked fault specification."""

    kind: str
    function: str | None = None
    table: str | None = None
    operations: tuple[str, ...] = ()
    error: str = THROTTLE_ERRORS[0]
    mode: str = "unhandled"
    keys: tuple[KeyPattern, ...] = ()
    fraction: float = 1.0
    delay_ms: int = 0
    count: int | None = None
    seed: int | None = None
    attribute: str = "source_sequence"

    def as_dict(self) -> dict[str, Any]:
        """The spec as JSON (only the fields that mean something for its kind)."""
        document = asdict(self)
        document["keys"] = [str(key) for key in self.keys]
        document["operations"] = list(self.operations)
        if self.kind not in ("throttle",):
            document.pop("error")
            document.pop("operations")
        if self.kind != "fail":
            document.pop("mode")
            document.pop("keys")
        if self.kind != "watch":
            document.pop("attribute")
        if self.kind not in ("delay", "timeout", "kill-worker"):
            document.pop("delay_ms")
        return document


def parse_spec(document: object) -> FaultSpec:
    """Check a JSON fault spec; raise FaultSpecError (one line) when it cannot be used."""
    if not isinstance(document, dict):
        raise FaultSpecError("a fault spec is a JSON object with at least a 'kind'")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise FaultSpecError(f"unknown field(s) {', '.join(unknown)}; known: {sorted(_FIELDS)}")
    kind = document.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    fields: dict[str, Any] = {"kind": kind}
    function = _name(document, "function")
    table = _name(document, "table")
    if kind in FUNCTION_KINDS and function is None:
        raise FaultSpecError(f"a {kind} fault needs 'function' (e.g. stream-processor)")
    if kind in ("throttle", "watch") and table is None:
        raise FaultSpecError(f"a {kind} fault needs 'table' (e.g. notification-records)")
    if kind in FUNCTION_KINDS | {"restart-poller"} and table is not None:
        raise FaultSpecError(f"a {kind} fault is scoped by 'function', not 'table'")
    if kind in ("throttle", "watch") and function is not None:
        raise FaultSpecError(f"a {kind} fault is scoped by 'table', not 'function'")
    fields.update(function=function, table=table)
    fraction = document.get("fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise FaultSpecError(f"fraction must be a number from 0 to 1, not {fraction!r}")
    if not 0.0 <= float(fraction) <= 1.0:
        raise FaultSpecError(f"fraction must be from 0 to 1, not {fraction}")
    fields["fraction"] = float(fraction)
    fields["count"] = _integer(document, "count", 1, None)
    fields["seed"] = _integer(document, "seed", None, None)
    if kind == "fail":
        mode = document.get("mode", "unhandled")
        if mode not in FAIL_MODES:
            raise FaultSpecError(f"mode must be one of {', '.join(FAIL_MODES)}, not {mode!r}")
        keys = document.get("keys", [])
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list):
            raise FaultSpecError("keys must be a list of attribute=glob patterns")
        fields.update(mode=mode, keys=tuple(KeyPattern.parse(key) for key in keys))
    elif "mode" in document or "keys" in document:
        raise FaultSpecError(f"'mode' and 'keys' apply to fail faults, not {kind}")
    if kind in ("delay", "timeout", "kill-worker"):
        upper = 900_000  # Lambda's longest timeout
        default = 1000 if kind == "delay" else 0
        delay = _integer(document, "delay_ms", 0, upper)
        fields["delay_ms"] = default if delay is None else delay
    elif "delay_ms" in document:
        raise FaultSpecError(f"'delay_ms' applies to delay, timeout and kill-worker, not {kind}")
    if kind == "throttle":
        fields.update(_throttle_fields(document))
    elif "operations" in document or "error" in document:
        raise FaultSpecError(f"'operations' and 'error' apply to throttle faults, not {kind}")
    if kind == "watch":
        attribute = document.get("attribute", "source_sequence")
        if not isinstance(attribute, str) or not _ATTRIBUTE.match(attribute):
            raise FaultSpecError(f"attribute must be an attribute name, not {attribute!r}")
        fields["attribute"] = attribute
    return FaultSpec(**fields)


def _throttle_fields(document: dict[str, Any]) -> dict[str, Any]:
    error = document.get("error", THROTTLE_ERRORS[0])
    if error not in THROTTLE_ERRORS:
        raise FaultSpecError(f"error must be one of {', '.join(THROTTLE_ERRORS)}, not {error!r}")
    operations = document.get("operations", [])
    if isinstance(operations, str):
        operations = [operations]
    if not isinstance(operations, list):
        raise FaultSpecError("operations must be a list of DynamoDB actions, e.g. ['PutItem']")
    unknown = sorted(str(op) for op in operations if op not in DYNAMODB_OPERATIONS)
    if unknown:
        raise FaultSpecError(
            f"unknown DynamoDB operation(s) {', '.join(unknown)}; "
            f"one of {', '.join(sorted(DYNAMODB_OPERATIONS))}"
        )
    return {"error": error, "operations": tuple(operations)}


def _name(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise FaultSpecError(f"{key} must be a {key} name, not {value!r}")
    return value


def _integer(document: dict[str, Any], key: str, low: int | None, high: int | None) -> int | None:
    value: object = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultSpecError(f"{key} must be an integer, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise FaultSpecError(f"{key} must be from {low} to {high}, not {value}")
    return value
