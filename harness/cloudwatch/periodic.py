"""One step run at a fixed interval on a daemon thread: the metric sink's, the log shipper's and
the autoscaler's loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

logger = logging.getLogger(__name__)


class Periodic:
    """Runs ``step()`` every ``interval_s`` (or until the next multiple of it, ``aligned``)."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], object],
        *,
        aligned: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.step = step
        self.aligned = aligned  # a clock: wait until its next multiple of interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again, after :meth:`stop`)."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a step under way finishes first."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _wait(self) -> float:
        if self.aligned is None:
            return self.interval_s
        return self.interval_s - (self.aligned() % self.interval_s)

    def _run(self) -> None:
        while not self._stopping.wait(self._wait()):
            try:
                self.step()
            except Exception:  # the loop goes on; the failure is in the log
                logger.exception("%s: a periodic step failed", self.name)
