"""`Stack.wait_queryable`: the CLI probes the read path once the gateway's path can answer."""

from __future__ import annotations

import threading
from pathlib import Path

from harness.stack.stack import Stack, StackConfig


def test_stack_wait_queryable_needs_the_functions_and_the_serving_tasks(tmp_path: Path) -> None:
    stack = Stack(StackConfig(state_dir=tmp_path))
    assert not stack.wait_queryable(timeout_s=0.01)
    stack._tasks_serving.set()  # the gateway serves, every task healthy: no function yet
    assert not stack.wait_queryable(timeout_s=0.01)
    answered: list[bool] = []
    waiter = threading.Thread(target=lambda: answered.append(stack.wait_queryable(60.0)))
    waiter.start()
    stack._functions_made.set()
    waiter.join(timeout=60.0)
    assert answered == [True]
