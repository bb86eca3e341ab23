"""A request loop that counts every answer while a deployment, a scale-in or a crash happens."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Load:
    """POST ``path`` in a loop on ``url`` (one request in flight) until the block ends."""

    url: str
    path: str = "/query/user"
    body: dict[str, Any] = field(default_factory=lambda: {"user_id": "test_user_001"})
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._loop, name="load-loop", daemon=True)
        self._thread.start()
        self.wait_requests(3)  # warm: the change happens under a running loop
        return self

    def _loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._done.is_set():
                try:
                    answer = client.post(self.url + self.path, json=self.body)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses.append(answer.status_code)
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")

    def wait_requests(self, more: int, timeout_s: float = 60.0) -> None:
        """Wait until ``more`` further requests were answered (a loaded machine is slow)."""
        target = len(self.statuses) + len(self.failures) + more
        deadline = time.monotonic() + timeout_s
        while len(self.statuses) + len(self.failures) < target and time.monotonic() < deadline:
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.wait_requests(3)  # the loop also runs on what the change left behind
        self._done.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
