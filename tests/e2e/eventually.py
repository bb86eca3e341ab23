"""Waiting for the read side in end-to-end tests: retry an assertion until it holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout_s: float = 20.0, interval_s: float = 0.1) -> T:
    """Call ``check`` until it returns without an AssertionError; re-raise the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval_s)
