from __future__ import annotations

import threading

import pytest

from harness.stack.resource_graph import ResourceGraph


def test_resource_graph_runs_each_step_after_its_dependencies() -> None:
    order: list[str] = []
    lock = threading.Lock()

    def step(name: str) -> None:
        with lock:
            order.append(name)

    def slow_role() -> None:  # a dependent started too early would run meanwhile
        threading.Event().wait(0.05)
        step("role")

    graph = ResourceGraph()
    graph.add("role", slow_role)
    graph.add("log group", lambda: step("log group"))
    graph.add("policy", lambda: step("policy"), ["role"])
    graph.add("function", lambda: step("function"), ["role", "log group"])
    graph.apply()
    assert sorted(order) == ["function", "log group", "policy", "role"]
    assert order.index("function") > max(order.index("role"), order.index("log group"))
    assert order.index("policy") > order.index("role")


def test_resource_graph_runs_independent_steps_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=10)  # each waits for the other: only concurrency passes
    graph = ResourceGraph(parallelism=2)
    graph.add("a", both.wait)
    graph.add("b", both.wait)
    graph.apply()


def test_resource_graph_never_runs_more_than_its_parallelism() -> None:
    running = peak = 0
    lock = threading.Lock()

    def step() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.01)
        with lock:
            running -= 1

    graph = ResourceGraph(parallelism=3)
    for index in range(12):
        graph.add(f"s{index}", step)
    graph.apply()
    assert 1 <= peak <= 3


def test_resource_graph_failure_skips_dependents_and_raises_the_error() -> None:
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("role refused")

    graph = ResourceGraph()
    graph.add("role", fail)
    graph.add("function", lambda: ran.append("function"), ["role"])
    with pytest.raises(RuntimeError, match="role refused"):
        graph.apply()
    assert ran == []


def test_resource_graph_rejects_unknown_dependencies_cycles_and_duplicates() -> None:
    graph = ResourceGraph()
    graph.add("function", lambda: None, ["role"])
    with pytest.raises(ValueError, match="unknown steps"):
        graph.apply()
    cycle = ResourceGraph()
    cycle.add("a", lambda: None, ["b"])
    cycle.add("b", lambda: None, ["a"])
    with pytest.raises(ValueError, match="cycle"):
        cycle.apply()
    with pytest.raises(ValueError, match="already"):
        cycle.add("a", lambda: None)
