"""The start-up heap frozen, so that CPython's full collections run in a long-lived process.

CPython collects its oldest generation only when the objects that survived the younger ones
since the last full collection exceed a quarter of those that collection kept (``gc`` module,
CPython's ``gcmodule.c``: ``long_lived_pending < long_lived_total / 4``). The endpoint keeps
millions of objects from start-up (moto's backends and models, botocore's loaders), the stack
process hundreds of thousands: full collections hardly ever run, and the reference cycles that
requests leave behind (exceptions and their frames, clients, responses) pile up in the oldest
generation. An idle stack grew by 1-2 MB per 10 minutes that way; a full collection every 30 s
took it to 0.3 MB (``bench/idle_rss.py``).

:func:`freeze_startup_heap` collects, moves every object still alive into the permanent
generation (``gc.freeze``: "move them to a permanent generation and ignore them in all the
future collections"), and collects once more, so the oldest generation holds only what was made since and full
collections run again, over few objects. Frozen objects are still freed when their reference
count drops; only a cycle among them would stay.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

__all__ = ["freeze_after", "freeze_startup_heap"]

logger = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect, freeze what is alive, collect again; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    gc.collect()
    return gc.get_freeze_count()


def freeze_after(
    thread_names: tuple[str, ...], delay_s: float = 30.0, timeout_s: float = 300.0
) -> threading.Thread:
    """Freeze the start-up heap on a daemon thread ``delay_s`` after the named threads (e.g. a
    warm-up) end: the two collections take the GIL for up to a second in a big heap, so they
    wait for a stack's ``up`` to be over."""

    def run() -> None:
        deadline = time.monotonic() + timeout_s
        for thread in list(threading.enumerate()):
            if thread.name in thread_names:
                thread.join(max(0.0, deadline - time.monotonic()))
        time.sleep(delay_s)
        frozen = freeze_startup_heap()
        logger.info("start-up heap frozen: %d objects left out of collections", frozen)

    thread = threading.Thread(target=run, name="heap-freeze", daemon=True)
    thread.start()
    return thread
