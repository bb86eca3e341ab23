"""Stream sync end to end under injected faults (embedded backend: the ``faults`` fixture).

Poison records end in the on-failure queue and nowhere else; transient failures, throttling, a
killed worker and a restarted poller lose nothing; bad fault specs are refused and the stack
keeps running; a short soak checks a whole run exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from harness.faults.client import FaultApiError
from harness.faults.soak import run_soak
from harness.faults.soak_check import read_dlq, read_side, read_stream
from harness.faults.soak_workload import SoakConfig
from harness.stack.commands import put_commands
from tests.e2e.eventually import eventually

Factory = Callable[..., dict[str, Any]]


def _run() -> str:
    return f"e2e{uuid.uuid4().hex[:6]}"


def _read_titles(aws: Any, run: str) -> dict[str, str]:
    return {
        str(i["transaction_id"]): str(i["notification_title"]) for i in read_side(aws.dynamodb, run)
    }


@pytest.mark.timeout(300)
def test_poison_records_go_to_the_queue_and_nowhere_else(
    aws, faults, command_record_factory: Factory
) -> None:
    run = _run()
    faults.add(kind="fail", function="stream-processor", keys=[f"transaction_id={run}-pu-*"])
    faults.add(kind="fail", function="stream-processor", mode="partial",
               keys=[f"transaction_id={run}-pp-*"])  # fmt: skip
    names = [f"{run}-{kind}-{i}" for i in range(12) for kind in ("g",)]
    names[3], names[8] = f"{run}-pu-3", f"{run}-pp-8"
    records = [command_record_factory(transaction_id=n, user_id=f"{run}-u{i % 3}")
               for i, n in enumerate(names)]  # fmt: skip
    put_commands(aws.dynamodb, records)
    good = {n for n in names if "-g-" in n}
    eventually(lambda: _assert_equal(set(_read_titles(aws, run)), good), timeout_s=60)
    queue = aws.sqs.get_queue_url(QueueName="stream-processor-dlq")["QueueUrl"]
    stream = read_stream(aws.dynamodb, aws.dynamodbstreams, run)
    ranges: list[tuple[str, int, int]] = []

    def reported() -> set[str]:
        ranges.extend(read_dlq(aws.sqs, queue))
        covered = {e.key[0] for e in stream for shard, first, last in ranges
                   if e.shard == shard and first <= e.sequence <= last}  # fmt: skip
        assert covered == {f"{run}-pu-3", f"{run}-pp-8"}, covered
        return covered

    eventually(reported, timeout_s=60)
    fired = {f["mode"]: f["fired"] for f in faults.list()["faults"]}
    assert fired["unhandled"] >= 6 and fired["partial"] >= 6  # first try + 5 retries each


def _assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected, f"{actual!r:.300} != {expected!r:.300}"


@pytest.mark.timeout(300)
def test_transient_failures_and_throttling_lose_nothing(
    aws, faults, command_record_factory: Factory
) -> None:
    run = _run()
    faults.add(kind="fail", function="stream-processor", fraction=0.3, seed=1)
    faults.add(kind="fail", function="stream-processor", mode="partial", fraction=0.3, seed=2)
    faults.add(kind="throttle", table="notification-records", operations=["PutItem"],
               fraction=0.2, seed=3)  # fmt: skip
    records = [command_record_factory(transaction_id=f"{run}-{i}", user_id=f"{run}-u{i % 4}")
               for i in range(30)]  # fmt: skip
    for batch in range(0, 30, 5):
        put_commands(aws.dynamodb, records[batch : batch + 5])
        put_commands(aws.dynamodb, [{**r, "status": "DELIVERED", "notification_title": "v2"}
                                    for r in records[batch : batch + 5]])  # fmt: skip
    expected = {r["transaction_id"]: "v2" for r in records}
    eventually(lambda: _assert_equal(_read_titles(aws, run), expected), timeout_s=120)
    fired = {f["kind"]: 0 for f in faults.list()["faults"]}
    for fault in faults.list()["faults"]:
        fired[fault["kind"]] += fault["fired"]
    assert fired["fail"] > 0 and fired["throttle"] > 0


@pytest.mark.timeout(300)
def test_killed_worker_and_restarted_poller_lose_nothing(
    aws, faults, command_record_factory: Factory
) -> None:
    run = _run()
    kill = faults.add(kind="kill-worker", function="stream-processor", delay_ms=1, count=2)
    records = [command_record_factory(transaction_id=f"{run}-{i}", user_id=f"{run}-u{i % 5}")
               for i in range(40)]  # fmt: skip
    put_commands(aws.dynamodb, records[:20])
    restart = faults.add(kind="restart-poller", function="stream-processor")
    assert restart["fired"] == 1
    put_commands(aws.dynamodb, records[20:])
    put_commands(aws.dynamodb, [{**r, "notification_title": "last"} for r in records[::3]])
    expected = {r["transaction_id"]: r["notification_title"] for r in records}
    expected.update({r["transaction_id"]: "last" for r in records[::3]})
    eventually(lambda: _assert_equal(_read_titles(aws, run), expected), timeout_s=120)
    assert faults.get(kill["id"])["fired"] >= 1
    (mapping,) = aws("lambda").list_event_source_mappings(FunctionName="stream-processor")[
        "EventSourceMappings"
    ]
    assert mapping["State"] == "Enabled"


def test_bad_fault_specs_are_refused_and_the_stack_keeps_running(api: httpx.Client, faults) -> None:
    for spec, reason in [
        ({"kind": "fail", "function": "nope"}, "unknown function 'nope'"),
        ({"kind": "throttle", "table": "nope"}, "unknown table 'nope'"),
        ({"kind": "fail", "function": "stream-processor", "fraction": 7}, "from 0 to 1"),
        ({"kind": "fail", "function": "stream-processor", "keys": ["x"]}, "malformed key"),
    ]:
        with pytest.raises(FaultApiError, match=reason):
            faults.add(spec)
    assert faults.list()["faults"] == []
    assert api.get("/health").status_code == 200


def test_killed_replica_is_replaced_and_queries_answer(api: httpx.Client, stack, faults) -> None:
    killed = faults.kill_replica()
    eventually(lambda: _assert_equal(api.get("/health").status_code, 200), timeout_s=60)

    def replaced() -> None:
        pids = {r["pid"] for r in stack.stack.state()["replicas"]}
        assert killed["pid"] not in pids and len(pids) >= 2, pids

    eventually(replaced, timeout_s=60)
    # an ALB does not retry on another target: only the requests in flight on the killed task
    # may fail; once it is deregistered and replaced, every request is answered
    assert [api.get("/health").status_code for _ in range(10)] == [200] * 10


@pytest.mark.timeout(600)  # 400 records under faults: about a minute on a loaded machine
def test_short_soak_keeps_every_record_exactly(aws, faults) -> None:
    config = SoakConfig(records=400, rate=150.0, poison_fraction=0.01, throttle_fraction=0.01,
                        drain_timeout_s=240.0)  # fmt: skip
    clients = {name: aws(name) for name in ("dynamodb", "dynamodbstreams", "sqs")}
    result = run_soak(clients, faults, config)
    print("\n".join(result.lines()))
    assert result.ok, "\n".join(result.lines())
    assert (
        result.verdict.counts["poison"] > 0
        and sum(
            fired for label, fired in result.figures["fired_by_kind"].items() if "poison" in label
        )
        >= 6 * result.verdict.counts["poison"]
    )  # each poison record: first try + 5 retries
