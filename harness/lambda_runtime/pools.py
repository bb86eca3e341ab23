"""A function version's pool of warm workers: grows on demand up to its concurrency limit, hands
out idle workers again, and is retired when the function is updated or unregistered.

Only the bookkeeping (idle workers, how many exist, the limit) is here: :mod:`runtime.py
<harness.lambda_runtime.runtime>` starts and disposes of the workers themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from harness.lambda_runtime.config import FunctionConfig
from harness.lambda_runtime.environment import Worker
from harness.lambda_runtime.invocation import TooManyRequests
from harness.lambda_runtime.variables import region_of

__all__ = ["Pool", "pool_key"]


class Pool:
    """Warm workers of one function version; grows on demand up to its concurrency limit."""

    def __init__(self, config: FunctionConfig, limit: int) -> None:
        self.config = config
        self.limit = limit
        self.reserved = config.reserved_concurrency is not None
        self.lock = threading.Lock()
        self.idle: list[Worker] = []
        self.count = 0
        self.retired = False

    def take_initialised(self) -> Worker | None:
        """An idle worker whose init is done, or None."""
        with self.lock:
            return self.idle.pop() if self.idle and self.idle[-1].initialised else None

    def take(self) -> Worker | None:
        """An idle worker; else None, with ``count`` raised for the new worker the caller starts.

        TooManyRequests when the pool is at its limit.
        """
        with self.lock:
            if self.idle:
                return self.idle.pop()
            if self.count >= self.limit:
                raise TooManyRequests(
                    f"Rate Exceeded. Concurrency limit of {self.limit} reached "
                    f"for function {self.config.name}"
                )
            self.count += 1
        return None

    def take_first(self) -> bool:
        """True, with ``count`` raised for the caller's new worker, when the pool has none."""
        with self.lock:
            if self.idle or self.count:
                return False
            self.count += 1
        return True

    def forget(self) -> None:
        """Lower ``count`` for a worker that failed to start."""
        with self.lock:
            self.count -= 1

    def put_back(self, worker: Worker, reusable: bool, closed: Callable[[], bool]) -> bool:
        """Keep ``worker`` idle if it is reusable and the pool and runtime are live; else lower
        ``count`` and return False (the caller disposes of it)."""
        with self.lock:
            if reusable and not self.retired and not closed():
                self.idle.append(worker)
                return True
            self.count -= 1
        return False

    def retire(self) -> list[Worker]:
        """Mark the pool retired; its idle workers, for the caller to dispose of."""
        with self.lock:
            self.retired = True
            idle, self.idle = self.idle, []
            self.count -= len(idle)
        return idle


def pool_key(pools: dict[str, Pool], function: str, region: str) -> str | None:
    """The ARN a function is registered under: an ARN as given; a bare name resolves to the
    function of that name in ``region`` (else the only one of that name)."""
    if function in pools:
        return function
    named = [arn for arn, pool in pools.items() if pool.config.name == function]
    home = [arn for arn in named if region_of(arn) == region]
    found = home or named
    return found[0] if len(found) == 1 else None
