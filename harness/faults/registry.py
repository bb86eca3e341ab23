"""The live faults of one endpoint process: added, matched, counted, listed, cleared.

The registry lives in the embedded endpoint's process, beside the Lambda runtime, the stream
pollers and moto, so it dies with the stack: no fault outlives it. It knows nothing of moto or
HTTP servers: the endpoint hands it callables (which functions and tables exist, how to restart
the pollers) and routes ``/_harness/faults`` to :meth:`FaultRegistry.handle`.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.faults.spec import FUNCTION_KINDS, FaultSpec, FaultSpecError, parse_spec

__all__ = ["CONTROL_PATH", "DeliveryStats", "Fault", "FaultRegistry"]

CONTROL_PATH = "/_harness/faults"


@dataclass
class Fault:
    """One live fault: its spec, how often it was in scope (``seen``) and how often it fired."""

    id: str
    spec: FaultSpec
    created: float = field(default_factory=time.time)
    seen: int = 0
    fired: int = 0
    #: further counts a kind keeps (the watch: ``resurrected``)
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.spec.seed is not None:
            self._rng.seed(self.spec.seed)

    def roll(self) -> bool:
        """In scope once more: True when it should fire now (fraction, count left)."""
        with self._lock:
            self.seen += 1
            if self.spec.count is not None and self.fired >= self.spec.count:
                return False
            return self._rng.random() < self.spec.fraction

    def choose(self, size: int) -> int:
        """A random index below ``size`` (which record a partial failure names)."""
        with self._lock:
            return self._rng.randrange(size)

    def fire(self, times: int = 1) -> None:
        """Count that it acted."""
        with self._lock:
            self.fired += times

    def as_dict(self) -> dict[str, Any]:
        """The fault as the control API lists it."""
        document = {"id": self.id, **self.spec.as_dict(), "seen": self.seen, "fired": self.fired}
        return {**document, **self.counts}


@dataclass
class DeliveryStats:
    """What each function's invocations looked like while faults were live (from the events)."""

    invocations: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    redeliveries: Counter[str] = field(default_factory=Counter)
    smaller_redeliveries: Counter[str] = field(default_factory=Counter)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    _last_size: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, function: str, sequence_numbers: Sequence[str]) -> None:
        """One invocation of ``function`` with these stream records (empty for other events)."""
        with self._lock:
            self.invocations[function] += 1
            if not sequence_numbers:
                return
            self.records[function] += len(sequence_numbers)
            seen = self._seen.setdefault(function, set())
            if sequence_numbers[0] in seen:
                self.redeliveries[function] += 1
                if len(sequence_numbers) < self._last_size.get(function, 0):
                    self.smaller_redeliveries[function] += 1
            seen.update(sequence_numbers)
            self._last_size[function] = len(sequence_numbers)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                name: {
                    "invocations": self.invocations[name],
                    "records_delivered": self.records[name],
                    # an invocation starting at a record delivered before: a retry, a bisected
                    # half, or the resumption at a record a partial batch response named
                    "redeliveries": self.redeliveries[name],
                    "smaller_redeliveries": self.smaller_redeliveries[name],
                }
                for name in sorted(self.invocations)
            }


class UnknownTarget(FaultSpecError):
    """The spec names a function or table the stack does not have."""


class FaultRegistry:
    """The faults of one endpoint; thread-safe; every hook asks it what to do."""

    def __init__(
        self,
        *,
        functions: Callable[[], Iterable[str]],
        tables: Callable[[], Mapping[str, Sequence[str]]],
        restart_pollers: Callable[[str | None], int] | None = None,
    ) -> None:
        self._functions = functions
        self._tables = tables
        self._restart_pollers = restart_pollers
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self.stats = DeliveryStats()

    # -- the API -------------------------------------------------------------------------

    def add(self, document: object) -> Fault:
        """Check a spec and make it live (restart-poller acts at once); FaultSpecError if bad."""
        spec = parse_spec(document)
        if spec.function is not None and spec.function not in set(self._functions()):
            known = ", ".join(sorted(self._functions())) or "none"
            raise UnknownTarget(f"unknown function {spec.function!r}; the stack has: {known}")
        if spec.table is not None and spec.table not in self._tables():
            known = ", ".join(sorted(self._tables())) or "none"
            raise UnknownTarget(f"unknown table {spec.table!r}; the stack has: {known}")
        fault = Fault(f"f{next(self._ids)}", spec)
        if spec.kind == "restart-poller":
            if self._restart_pollers is None:
                raise FaultSpecError("this endpoint runs no stream pollers")
            fault.seen = 1
            fault.fire(self._restart_pollers(spec.function))
        with self._lock:
            self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> Fault | None:
        """Remove one fault; None if there is none with that id."""
        with self._lock:
            return self._faults.pop(fault_id, None)

    def clear(self) -> int:
        """Remove every fault (and forget the delivery statistics); returns how many."""
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            self.stats = DeliveryStats()
        return count

    def faults(self) -> list[Fault]:
        """The live faults, oldest first."""
        with self._lock:
            return list(self._faults.values())

    def describe(self) -> dict[str, Any]:
        """Faults with their counts, fired counts by kind, and the invocation statistics."""
        faults = self.faults()
        by_kind: Counter[str] = Counter()
        for fault in faults:
            by_kind[fault.spec.kind] += fault.fired
        return {
            "faults": [fault.as_dict() for fault in faults],
            "fired_by_kind": dict(by_kind),
            "deliveries": self.stats.as_dict(),
        }

    # -- what the hooks ask ----------------------------------------------------------------

    def for_function(self, function: str) -> list[Fault]:
        """The live function faults scoped to ``function``."""
        with self._lock:
            return [
                fault
                for fault in self._faults.values()
                if fault.spec.kind in FUNCTION_KINDS and fault.spec.function == function
            ]

    def for_table(self, kind: str, table: str) -> list[Fault]:
        """The live faults of ``kind`` (throttle, watch) scoped to ``table``."""
        with self._lock:
            return [
                fault
                for fault in self._faults.values()
                if fault.spec.kind == kind and fault.spec.table == table
            ]

    def active(self) -> bool:
        """True while any fault (or watch) is live; delivery statistics are kept only then."""
        with self._lock:
            return bool(self._faults)

    def has(self, kind: str) -> bool:
        """True when any fault of ``kind`` is live (a cheap test before parsing a request)."""
        with self._lock:
            return any(fault.spec.kind == kind for fault in self._faults.values())

    def key_attributes(self, table: str) -> Sequence[str]:
        """The key attribute names of ``table`` (empty if unknown)."""
        return self._tables().get(table, ())

    # -- the control API (routed here by the endpoint) -------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Serve ``/_harness/faults[/<id>]``: GET lists, POST adds, DELETE clears or removes."""
        rest = path[len(CONTROL_PATH) :].strip("/")
        method = method.upper()
        if not rest and method == "GET":
            return 200, self.describe()
        if not rest and method == "POST":
            try:
                document = json.loads(body or b"null")
            except ValueError as exc:
                return _error(400, "InvalidFault", f"the fault spec is not JSON: {exc}")
            try:
                fault = self.add(document)
            except FaultSpecError as exc:
                return _error(400, "InvalidFault", str(exc))
            return 201, {"fault": fault.as_dict()}
        if not rest and method == "DELETE":
            return 200, {"cleared": self.clear()}
        if rest and "/" not in rest and method in ("GET", "DELETE"):
            with self._lock:
                found = self._faults.get(rest)
            if found is None:
                return _error(404, "ResourceNotFoundException", f"no fault {rest!r}")
            if method == "DELETE":
                self.remove(rest)
            return 200, {"fault": found.as_dict()}
        return _error(405, "MethodNotAllowed", f"{method} is not allowed on {path}")


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message}
