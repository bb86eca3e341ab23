"""Task logs as the awslogs driver sends them: each task's stdout/stderr to CloudWatch Logs.

The awslogs driver names a task's stream ``<awslogs-stream-prefix>/<container-name>/<task-id>``
in the group ``awslogs-group`` of the container's ``logConfiguration``, and sends each line of
output as one event stamped with the time it was read. The harness's replicas already write their
output to a file each; the shipper follows those files and sends new lines every ``interval_s``.
Lines keep going to the files too (``query-harness logs``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cloudwatch.periodic import Periodic
from harness.cloudwatch.publishers import TaskLister

__all__ = ["AwsLogsConfig", "TaskLogShipper"]

logger = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 10_000  # PutLogEvents limits: 10,000 events and 1,048,576 bytes a call
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES


@dataclass(frozen=True)
class AwsLogsConfig:
    """The ``logConfiguration`` of an awslogs container."""

    group: str
    stream_prefix: str
    container: str

    @classmethod
    def from_container(cls, container: dict[str, Any]) -> AwsLogsConfig | None:
        """The container definition's awslogs settings, or None for another log driver."""
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") != "awslogs" or "awslogs-group" not in options:
            return None
        return cls(
            options["awslogs-group"],
            options.get("awslogs-stream-prefix", ""),
            str(container.get("name", "")),
        )

    def stream_name(self, task_id: str) -> str:
        """``prefix/container/task-id`` (without a prefix, AWS names the stream by container id)."""
        if not self.stream_prefix:
            return task_id
        return f"{self.stream_prefix}/{self.container}/{task_id}"


@dataclass
class _Follow:
    path: Path
    stream: str
    offset: int = 0
    partial: bytes = b""

    def done(self) -> bool:
        """Everything in the file was sent (an unfinished last line is sent as it is)."""
        try:
            return self.offset >= self.path.stat().st_size
        except FileNotFoundError:
            return True


class TaskLogShipper:
    """Follows every task's log file and sends its new lines to the task's awslogs stream."""

    def __init__(
        self,
        client: Any,
        config: AwsLogsConfig,
        tasks: TaskLister,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.config = config
        self.tasks = tasks
        self.interval_s = interval_s
        self.clock = clock
        self._follows: dict[str, _Follow] = {}
        self._lock = threading.Lock()
        self._loop = Periodic("task-logs", interval_s, self.ship)
        self.sent = 0
        self.errors = 0

    def ship(self) -> int:
        """Send the lines written since the last call; the number of events sent."""
        with self._lock:
            listed = {task.task_id: task.log_path for task in self.tasks() if task.log_path}
            for task_id, path in listed.items():
                if task_id not in self._follows:
                    self._follow(task_id, path)
            sent = sum(self._ship_one(follow) for follow in self._follows.values())
            for gone in set(self._follows) - set(listed):
                if self._follows[gone].done():  # a gone task's last lines are sent: let it go
                    del self._follows[gone]
        self.sent += sent
        return sent

    def _follow(self, task_id: str, path: Path) -> None:
        stream = self.config.stream_name(task_id)
        try:
            self.client.create_log_stream(logGroupName=self.config.group, logStreamName=stream)
        except self.client.exceptions.ResourceAlreadyExistsException:
            pass
        self._follows[task_id] = _Follow(path, stream)

    def _ship_one(self, follow: _Follow) -> int:
        try:
            with follow.path.open("rb") as handle:
                handle.seek(follow.offset)
                data = handle.read()
        except FileNotFoundError:
            return 0
        if not data:
            return 0
        now_ms = int(self.clock() * 1000)
        lines = (follow.partial + data).split(b"\n")
        follow.partial = lines.pop()  # an unfinished line waits for its end
        events = [
            {"timestamp": now_ms, "message": line.decode("utf-8", "replace")[:MAX_EVENT_BYTES]}
            for line in lines
            if line.strip()
        ]
        sent = 0
        for batch in _batches(events):
            try:
                self.client.put_log_events(
                    logGroupName=self.config.group, logStreamName=follow.stream, logEvents=batch
                )
            except Exception as exc:  # noqa: BLE001 - kept for the next round, and said
                self.errors += 1
                logger.warning("PutLogEvents to %s failed: %s", follow.stream, exc)
                return sent  # the offset stays: these lines are sent again next time
            sent += len(batch)
        follow.offset += len(data)
        return sent

    def start(self) -> TaskLogShipper:
        """Ship every ``interval_s`` on a daemon thread until :meth:`stop`."""
        self._loop.start()
        return self

    def stop(self) -> None:
        """Stop the thread and send what is left."""
        self._loop.stop()
        self.ship()


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + EVENT_OVERHEAD_BYTES
        if current and (len(current) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += cost
    if current:
        batches.append(current)
    return batches
