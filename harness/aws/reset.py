"""The endpoint's reset: a gate that holds requests back while state is wiped, and reset hooks.

moto's ``POST /moto-api/reset`` re-initialises every backend in place (``self.__dict__ = {}``,
then ``__init__``). A request served meanwhile sees a half-built backend (``'IAMBackend' object
has no attribute 'access_keys'``). Here every request that touches moto's state passes the
:class:`ResetGate`; a reset closes it, waits for the requests already inside, wipes, and opens
it again: requests that arrive during a reset wait for it instead of failing.

:class:`ResetHooks` is where the endpoint's other holders of state (Lambda runtime, event source
mappings, and whatever later parts add: faults, metrics...) register what a reset must do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ResetGate", "ResetHooks"]

logger = logging.getLogger("harness.aws.reset")


class ResetGate:
    """Many requests at once, or one reset alone; re-entrant for a thread already inside."""

    def __init__(self, drain_timeout_s: float = 30.0) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closed = False
        self._drain_timeout_s = drain_timeout_s
        self._local = threading.local()

    @contextmanager
    def request(self) -> Iterator[None]:
        """Hold the gate open for one request (waits while a reset runs)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._closed:
                    self._cond.wait()
                self._inside += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._inside -= 1
                    if self._inside == 0:
                        self._cond.notify_all()

    @contextmanager
    def closed(self) -> Iterator[None]:
        """Close the gate: new requests wait; the ones inside finish first (bounded wait)."""
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a reset cannot run inside a request that holds the gate")
        with self._cond:
            while self._closed:  # one reset at a time
                self._cond.wait()
            self._closed = True
            deadline = time.monotonic() + self._drain_timeout_s
            while self._inside and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            if self._inside:
                logger.warning("reset: %d request(s) still inside after %.0f s; resetting anyway",
                               self._inside, self._drain_timeout_s)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class ResetHooks:
    """Callables run, in registration order, by every reset while the gate is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[tuple[str, Callable[[], None]]] = []

    def add(self, hook: Callable[[], None], name: str | None = None) -> Callable[[], None]:
        """Register ``hook``; returns a function that unregisters it."""
        entry = (name or str(getattr(hook, "__qualname__", repr(hook))), hook)
        with self._lock:
            self._hooks.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._hooks:
                    self._hooks.remove(entry)

        return remove

    def run(self) -> list[str]:
        """Run every hook; a failing hook is logged and named in the answer, the rest still run."""
        with self._lock:
            hooks = list(self._hooks)
        failed = []
        for name, hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("reset hook %s failed", name)
                failed.append(name)
        return failed
