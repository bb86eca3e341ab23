"""The reset gate and hooks on their own (no endpoint)."""

from __future__ import annotations

import threading
import time

from harness.aws.reset import ResetGate, ResetHooks


def test_reset_waits_for_requests_inside_and_requests_wait_for_the_reset() -> None:
    gate = ResetGate()
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def long_request() -> None:
        with gate.request():
            inside.set()
            release.wait(10)
            order.append("request 1 done")

    def reset() -> None:
        with gate.closed():
            order.append("reset")

    def late_request() -> None:
        with gate.request():
            order.append("request 2")

    first = threading.Thread(target=long_request)
    first.start()
    inside.wait(10)
    resetting = threading.Thread(target=reset)
    resetting.start()
    deadline = time.monotonic() + 10
    while not gate._closed:  # the reset has closed the gate and waits for request 1
        assert time.monotonic() < deadline
        time.sleep(0.01)
    late = threading.Thread(target=late_request)
    late.start()
    time.sleep(0.2)
    assert order == []  # the reset waits for request 1, request 2 for the reset
    release.set()
    for thread in (first, resetting, late):
        thread.join(10)
    assert order == ["request 1 done", "reset", "request 2"]


def test_a_thread_inside_the_gate_may_enter_again_while_a_reset_waits() -> None:
    gate = ResetGate(drain_timeout_s=10)
    entered_again = threading.Event()
    inside = threading.Event()

    def nested() -> None:
        with gate.request():
            inside.set()
            time.sleep(0.2)  # the reset closes the gate meanwhile
            with gate.request():
                entered_again.set()

    thread = threading.Thread(target=nested)
    thread.start()
    inside.wait(10)
    with gate.closed():
        assert entered_again.is_set()
    thread.join(10)


def test_hooks_run_in_order_and_a_failure_is_named_not_raised() -> None:
    hooks = ResetHooks()
    calls: list[str] = []
    hooks.add(lambda: calls.append("a"), "a")

    def broken() -> None:
        raise ValueError("no")

    remove = hooks.add(broken, "broken")
    hooks.add(lambda: calls.append("c"), "c")
    assert hooks.run() == ["broken"] and calls == ["a", "c"]
    remove()
    assert hooks.run() == [] and calls == ["a", "c", "a", "c"]


def test_request_nowait_does_not_enter_while_a_reset_runs_and_a_reset_waits_for_it() -> None:
    gate = ResetGate()
    closed, release = threading.Event(), threading.Event()

    def reset() -> None:
        with gate.closed():
            closed.set()
            release.wait(10)

    resetting = threading.Thread(target=reset)
    with gate.request_nowait() as inside:
        assert inside and gate._inside == 1
        resetting.start()
        assert not closed.wait(0.2)  # the reset waits for the request inside
    assert closed.wait(10)
    with gate.request_nowait() as inside:
        assert not inside and gate._inside == 0  # not entered, and not waiting either
    release.set()
    resetting.join(10)
    with gate.request_nowait() as inside:
        assert inside
