"""The start-up heap frozen: what was alive is left out of collections, cycles made after it are
collected by a full collection over the few objects left."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from harness.aws.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def frozen() -> Iterator[int]:
    try:
        yield freeze_startup_heap()
    finally:
        gc.unfreeze()


def test_objects_alive_at_the_freeze_leave_the_collections(frozen: int) -> None:
    assert frozen > 1000 and gc.get_freeze_count() > 0
    assert len(gc.get_objects(generation=2)) < frozen / 10


def test_a_cycle_made_after_the_freeze_is_still_collected(frozen: int) -> None:
    node = _Node()
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None
