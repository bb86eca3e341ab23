"""A Lambda invocation's log lines (START, the function's lines, END, REPORT as AWS writes them)
and their delivery in batches by one thread to the runtime's log sink."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable

from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.environment import Outcome

__all__ = ["LOG_BATCH_MAX", "LOG_FLUSH_S", "LogDelivery", "LogSink", "invocation_lines"]

#: Invocations' log lines are delivered in batches: the log thread waits this long after the
#: first queued invocation, then sends everything queued with one sink call per function. On
#: AWS a function's logs arrive later still ("It might take 5 to 10 minutes for logs to show up
#: after a function invocation", the Lambda developer guide, "Sending Lambda function logs to
#: CloudWatch Logs"); one PutLogEvents per invocation was ~40 us of fixed cost each.
LOG_FLUSH_S = 0.05
LOG_BATCH_MAX = 200

LogSink = Callable[[str, list[str]], None]


def invocation_lines(config: FunctionConfig, request_id: str, outcome: Outcome) -> list[str]:
    """An invocation's log lines: any init lines, START, its own lines, END and REPORT."""
    lines = [*outcome.init_lines, f"START RequestId: {request_id} Version: $LATEST"]
    lines += outcome.lines
    lines += outcome.trailer
    lines.append(f"END RequestId: {request_id}")
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
        f"Billed Duration: {max(math.ceil(outcome.duration_ms), 1)} ms\t"
        f"Memory Size: {config.memory_mb} MB\t"
        f"Max Memory Used: {outcome.max_memory_mb} MB"
    )
    if outcome.init_duration_ms is not None:
        report += f"\tInit Duration: {outcome.init_duration_ms:.2f} ms"
    if outcome.status:
        report += f"\tStatus: {outcome.status}"
    lines.append(report)
    return lines


class LogDelivery:
    """Queues invocations' lines and delivers them from one thread, in batches (LOG_FLUSH_S)."""

    def __init__(self, sink: LogSink | None, logger: logging.Logger) -> None:
        self._sink = sink
        self._logger = logger  # the runtime's: a function's lines are logged at DEBUG there
        self._queue: queue.SimpleQueue[tuple[str, list[str]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
        self._thread.start()

    def put(self, name: str, lines: list[str]) -> None:
        """Queue one invocation's lines, if anything (the sink, a DEBUG log) wants them."""
        if self._sink is not None or self._logger.isEnabledFor(logging.DEBUG):
            self._queue.put((name, lines))

    def close(self) -> None:
        """Deliver what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        """Deliver queued log lines every LOG_FLUSH_S, one sink call per function per batch."""
        while (item := self._queue.get()) is not None:
            time.sleep(LOG_FLUSH_S)
            batch: dict[str, list[str]] = {}
            stopping = False
            for count in range(1, LOG_BATCH_MAX + 1):  # invocations in this batch
                batch.setdefault(item[0], []).extend(item[1])
                if count == LOG_BATCH_MAX:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
            for name, lines in batch.items():
                self._deliver(name, lines)
            if stopping:
                return

    def _deliver(self, name: str, lines: list[str]) -> None:
        for line in lines:
            self._logger.debug("[%s] %s", name, line)
        if self._sink is None:
            return
        try:
            self._sink(name, lines)
        except Exception:
            self._logger.exception("log sink failed for %s; %d lines dropped", name, len(lines))
