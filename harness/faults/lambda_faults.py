"""Function faults, acting on one invocation of the Lambda runtime's real worker process.

:class:`LambdaFaults` is the runtime's invoke hook (``LambdaRuntime.invoke_hook``): it gets the
warm worker, the request id, the invocation header and the event, and returns the outcome.

- ``fail`` (mode ``unhandled``): the invocation ends with a function error, as a handler that
  raises before doing anything (``X-Amz-Function-Error: Unhandled``; errorType ``InjectedFault``).
- ``fail`` (mode ``partial``): the handler runs on the batch without the failed records and the
  response's ``batchItemFailures`` names them, as a handler whose ``record_handler`` raised for
  them (powertools' BatchProcessor). Without ``keys`` one random record of the batch fails; with
  ``keys`` (poison) every matching record fails, every time.
- ``delay``: the worker is stopped (SIGSTOP) at the start of the invocation and continued after
  ``delay_ms``; a delay past the function's timeout is a real timeout.
- ``timeout``: the worker stays stopped past the function's timeout, so the runtime's own
  timeout path ends it (``Sandbox.Timedout``, REPORT ``Status: timeout``, environment replaced);
  a worker not yet initialised ends by the init timeout (10 s) instead.
- ``kill-worker``: the worker is SIGKILLed ``delay_ms`` into the invocation, while the handler
  runs (``Runtime.ExitError``, ``signal: killed``, environment replaced); records it wrote
  before dying stay written, as on AWS.

The records matched by key patterns are DynamoDB stream records (their ``Keys`` and new or old
image); for other events, the top-level fields of the payload.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.faults.registry import Fault, FaultRegistry
from harness.lambda_runtime.environment import INIT_TIMEOUT_S, Outcome, Worker, error_payload

__all__ = ["LambdaFaults", "record_values"]

#: how long after the function's timeout a ``timeout`` fault continues the worker it stopped
#: (the runtime has killed it by then; continuing frees a write blocked on a full pipe)
_RESUME_AFTER_TIMEOUT_S = 1.0


def record_values(record: dict[str, Any]) -> dict[str, str]:
    """A stream record's key and image attributes (scalars as strings), for key patterns."""
    data = record.get("dynamodb")
    if not isinstance(data, dict):
        return {k: str(v) for k, v in record.items() if isinstance(v, str | int | float)}
    values: dict[str, str] = {}
    for part in ("OldImage", "NewImage", "Keys"):  # keys win, then the newest image
        image = data.get(part)
        if not isinstance(image, dict):
            continue
        for name, typed in image.items():
            if isinstance(typed, dict) and len(typed) == 1:
                ((kind, value),) = typed.items()
                if kind in ("S", "N", "BOOL"):
                    values[name] = str(value)
    return values


class LambdaFaults:
    """The invoke hook: applies the registry's function faults to one invocation."""

    def __init__(self, registry: FaultRegistry) -> None:
        self._registry = registry

    def passive(self, function: str) -> bool:
        """No fault is live (so nothing to count either): a call of ``function`` would only be
        ``Worker.invoke`` (the runtime's invoke_warm() then runs it without this hook)."""
        return not self._registry.active()

    def __call__(self, worker: Worker, request_id: str, header: bytes, event: bytes) -> Outcome:
        function = worker.config.name
        faults = self._registry.for_function(function)
        if not faults and not self._registry.active():  # no fault live: nothing to count either
            return worker.invoke(request_id, header, event)
        document = _json(event) if faults or b'"Records"' in event[:64] else None
        records = _stream_records(document)
        self._registry.stats.note(
            function, [str(r.get("dynamodb", {}).get("SequenceNumber", "")) for r in records]
        )
        if not faults:
            return worker.invoke(request_id, header, event)
        failed: dict[int, Fault] = {}
        for fault in (f for f in faults if f.spec.kind == "fail"):
            hit = self._failing(fault, document, records)
            if hit is None:
                continue
            fault.fire()
            if fault.spec.mode == "unhandled" or not records:
                return _injected_error(worker, fault, request_id)
            for index in hit:
                failed.setdefault(index, fault)
        if failed and len(failed) == len(records):
            return _partial(worker, failed, records, None)
        if failed:
            event = json.dumps(
                {
                    **(document or {}),
                    "Records": [r for i, r in enumerate(records) if i not in failed],
                }
            ).encode()
        with self._process_faults(worker, faults):
            outcome = worker.invoke(request_id, header, event)
        return _partial(worker, failed, records, outcome) if failed else outcome

    @staticmethod
    def _failing(fault: Fault, document: Any, records: list[dict[str, Any]]) -> list[int] | None:
        """Indices of the records ``fault`` fails now (all for unhandled), or None."""
        spec = fault.spec
        if spec.keys:
            items = records or ([document] if isinstance(document, dict) else [])
            hit = [
                index
                for index, item in enumerate(items)
                if any(key.matches(record_values(item)) for key in spec.keys)
            ]
            if not hit or not fault.roll():
                return None
            return hit
        if not fault.roll():
            return None
        return [fault.choose(len(records))] if records else []

    @contextmanager
    def _process_faults(self, worker: Worker, faults: list[Fault]) -> Iterator[None]:
        """Pause or kill the worker's process around one invocation, as the faults say."""
        pid = worker.process.pid
        timers: list[threading.Timer] = []
        lock = threading.Lock()
        running = [True]
        stopped = False

        def signal_if_running(signum: int, fault: Fault | None = None) -> None:
            with lock:
                if not running[0] or worker.process.poll() is not None:
                    return
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    return
                if fault is not None:
                    fault.fire()

        for fault in faults:
            kind = fault.spec.kind
            if kind not in ("delay", "timeout", "kill-worker") or not fault.roll():
                continue
            if kind == "kill-worker":
                timers.append(
                    threading.Timer(
                        fault.spec.delay_ms / 1000, signal_if_running, (signal.SIGKILL, fault)
                    )
                )
                continue
            pause_s = fault.spec.delay_ms / 1000
            if kind == "timeout":  # past the init timeout too: a new worker may not be ready
                pause_s = max(worker.config.timeout_s, INIT_TIMEOUT_S) + _RESUME_AFTER_TIMEOUT_S
                pause_s += fault.spec.delay_ms / 1000
            if not stopped:
                signal_if_running(signal.SIGSTOP)
                stopped = True
            fault.fire()
            timers.append(threading.Timer(pause_s, signal_if_running, (signal.SIGCONT,)))
        for timer in timers:
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            for timer in timers:
                timer.cancel()
            if stopped:
                signal_if_running(signal.SIGCONT)
            with lock:
                running[0] = False


def _json(event: bytes) -> Any:
    try:
        return json.loads(event)
    except ValueError:
        return None


def _stream_records(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list):
        return []
    return [r for r in document["Records"] if isinstance(r, dict) and "dynamodb" in r]


def _injected_error(worker: Worker, fault: Fault, request_id: str) -> Outcome:
    message = f"harness fault {fault.id}: {fault.spec.kind} ({fault.spec.mode}) in {request_id}"
    return Outcome(
        False,
        error_payload("InjectedFault", message),
        [f"[ERROR] InjectedFault: {message}"],
        0.0,
        worker.max_memory_mb,
    )


def _partial(
    worker: Worker,
    failed: dict[int, Fault],
    records: list[dict[str, Any]],
    outcome: Outcome | None,
) -> Outcome:
    """The outcome with the injected records added to its ``batchItemFailures``."""
    named = [
        {"itemIdentifier": str(records[index]["dynamodb"].get("SequenceNumber", ""))}
        for index in sorted(failed)
    ]
    lines = [
        f"[ERROR] InjectedFault: harness fault {fault.id} failed record {item['itemIdentifier']}"
        for item, fault in zip(named, (failed[i] for i in sorted(failed)), strict=True)
    ]
    if outcome is None:
        body = json.dumps({"batchItemFailures": named}).encode()
        return Outcome(True, body, lines, 0.0, worker.max_memory_mb)
    if not outcome.ok:
        return outcome  # the whole batch failed anyway
    response = _json(outcome.payload) if outcome.payload.strip() else None
    if not isinstance(response, dict):
        response = {}
    reported = response.get("batchItemFailures")
    response["batchItemFailures"] = [*(reported if isinstance(reported, list) else []), *named]
    outcome.payload = json.dumps(response).encode()
    outcome.lines = [*outcome.lines, *lines]
    return outcome
