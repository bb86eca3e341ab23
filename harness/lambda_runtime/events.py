"""Event (asynchronous) invocations: AWS queues them, runs each when due on a thread pool,
retries a function error twice (AWS's defaults: after 1 and 2 minutes; the Lambda developer
guide, "Asynchronous invocation"), retries throttles without counting them as attempts until
the event is older than MaximumEventAgeInSeconds (6 hours), and drops what a reset or close
leaves queued."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.lambda_runtime.environment import Outcome
from harness.lambda_runtime.invocation import TooManyRequests, result_too_large

__all__ = ["EVENT_MAX_AGE_S", "EventItem", "EventQueue"]

EVENT_MAX_AGE_S = 6 * 60 * 60  # AWS's default MaximumEventAgeInSeconds


@dataclass(order=True)
class EventItem:
    due: float
    seq: int
    name: str = field(compare=False)
    event: bytes = field(compare=False)
    client_context: Any = field(compare=False)
    request_id: str = field(compare=False)
    generation: int = field(compare=False, default=0)
    attempt: int = field(compare=False, default=0)
    enqueued: float = field(compare=False, default_factory=time.monotonic)


class EventQueue:
    """Queued Event invocations of one runtime, their retries, and the threads that run them.

    ``run(item)`` runs one attempt: its outcome, None when the item was dropped (its function
    gone, the runtime reset or closed), or TooManyRequests when throttled. ``closed()`` is the
    runtime's own closed flag.
    """

    def __init__(
        self,
        *,
        workers: int,
        run: Callable[[EventItem], Outcome | None],
        closed: Callable[[], bool],
        logger: logging.Logger,
        retry_delays_s: Sequence[float],
        throttle_delay_s: float,
    ) -> None:
        self._run = run
        self._closed = closed
        self._logger = logger  # the runtime's
        self.retry_delays = tuple(retry_delays_s)
        self._throttle_delay = throttle_delay_s
        self._events: list[EventItem] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pending = 0
        self.generation = 0  # bumped by reset(): older Event invocations and retries are dropped
        self._executor = ThreadPoolExecutor(max(workers, 1), "lambda-event")
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="lambda-events", daemon=True
        )
        self._dispatcher.start()

    def enqueue(self, item: EventItem, delay_s: float = 0.0, *, new: bool = False) -> None:
        with self._cond:
            closed = self._closed()
            if closed or item.generation != self.generation:
                self._logger.warning(
                    "runtime %s: Event %s for %s dropped",
                    "closed" if closed else "reset",
                    item.request_id,
                    item.name,
                )
                return
            item.due = time.monotonic() + delay_s
            item.seq = next(self._seq)
            if new:
                self._pending += 1
            heapq.heappush(self._events, item)
            self._cond.notify_all()

    def _dispatch(self) -> None:
        with self._cond:
            while not self._closed():
                wait = None
                if self._events:
                    wait = self._events[0].due - time.monotonic()
                    if wait <= 0:
                        self._executor.submit(self._run_event, heapq.heappop(self._events))
                        continue
                self._cond.wait(wait)

    def _run_event(self, item: EventItem) -> None:
        logger = self._logger
        done = True
        try:
            try:
                outcome = self._run(item)
            except TooManyRequests:  # throttles are retried and do not count as attempts
                if time.monotonic() - item.enqueued > EVENT_MAX_AGE_S:
                    logger.warning(
                        "Event %s for %s throttled for %d s; discarded",
                        item.request_id,
                        item.name,
                        EVENT_MAX_AGE_S,
                    )
                    return
                done = False
                self.enqueue(item, self._throttle_delay)
                return
            if outcome is None:
                return
            if result_too_large(outcome):
                # AWS discards an Event invocation's result (only a destination would get it, with
                # its own size limit): a function that returned over 6 MB still succeeded.
                logger.info("Event %s for %s: result over 6 MB discarded", item.request_id,
                            item.name)
            elif item.generation != self.generation:
                logger.info("Event %s for %s ended by a reset; not retried", item.request_id,
                            item.name)
            elif not outcome.ok and item.attempt < len(self.retry_delays):
                delay = self.retry_delays[item.attempt]
                item.attempt += 1
                done = False
                self.enqueue(item, delay)
            elif not outcome.ok:
                logger.warning(
                    "Event %s for %s failed %d times; discarded: %s",
                    item.request_id,
                    item.name,
                    item.attempt + 1,
                    outcome.payload[:500],
                )
        except Exception:
            logger.exception("Event %s for %s failed in the runtime", item.request_id, item.name)
        finally:
            if done:
                with self._cond:
                    if item.generation == self.generation:
                        self._pending = max(self._pending - 1, 0)
                    self._cond.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """Wait until every queued Event invocation (and its retries) is finished."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def drop(self, *, reset: bool) -> int:
        """Drop every queued invocation (a reset also drops retries still running); how many."""
        with self._cond:
            if reset:
                self.generation += 1
            dropped = len(self._events)
            self._events.clear()
            self._pending = 0
            self._cond.notify_all()
        return dropped

    def join_dispatcher(self) -> None:
        """Wait for the dispatcher to stop (it stops once the runtime is closed and notified)."""
        self._dispatcher.join()

    def shutdown(self) -> None:
        """Stop the thread pool, cancelling what it has not started."""
        self._executor.shutdown(wait=True, cancel_futures=True)
