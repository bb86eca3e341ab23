"""Start-up steps that run in threads beside the stack's start-up sequence: each keeps its error
for the thread that joins it, and may record how long it took."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Step:
    """A start-up step in a daemon thread; :meth:`result` joins it and re-raises its error."""

    def __init__(self, name: str, step: Callable[[], Any]) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(
            target=run_step, args=(step, self.errors), name=name, daemon=True
        )

    def start(self) -> Step:
        self.thread.start()
        return self

    def join(self) -> None:
        """Wait for the step, whatever its outcome."""
        self.thread.join()

    @property
    def error(self) -> BaseException | None:
        return self.errors[0] if self.errors else None

    def result(self) -> None:
        """Wait for the step; raise its error, if it failed."""
        self.thread.join()
        if self.errors:
            raise self.errors[0]


def run_step(step: Callable[[], Any], errors: list[BaseException]) -> None:
    """Run a start-up step in a thread; its error is re-raised by the thread that joins it."""
    try:
        step()
    except BaseException as exc:  # noqa: BLE001 - handed to the joining thread
        errors.append(exc)


def record_time(timings: dict[str, float], name: str, started: float) -> None:
    """Record under ``name`` the seconds since ``started`` (``time.perf_counter()``)."""
    timings[name] = round(time.perf_counter() - started, 3)


def timing(timings: dict[str, float], name: str, step: Callable[[], Any]) -> Callable[[], Any]:
    """``step``, recording how long it took under ``name`` in ``timings``."""

    def timed() -> Any:
        started = time.perf_counter()
        try:
            return step()
        finally:
            record_time(timings, name, started)

    return timed
