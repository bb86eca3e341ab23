"""The pure parts of items 2, 5 and 10: each names what is wrong in what it reads."""

from __future__ import annotations

import json

from harness.verify.checks import dataset, logs, performance
from harness.verify.load import Sample, percentile
from harness.verify.model import Status


def _records():
    data = dataset.generate(7, users=2, per_user=8, campaigns=2)
    user = data.ids("user")[0]
    return data, user, data.expected("user", user)


def test_dataset_has_more_than_a_page_and_mixed_statuses() -> None:
    data = dataset.generate(1)
    assert len(data.expected("user", data.ids("user")[0])) > 50
    assert {r["status"] for r in data.records} == {"SENT", "DELIVERED", "FAILED"}
    assert any("ap_id" not in r for r in data.records) and any("ap_id" in r for r in data.records)


def test_compare_exact_answer_has_no_problem() -> None:
    data, user, expected = _records()
    assert dataset.compare("user", user, list(expected), expected) == []


def test_compare_names_missing_duplicate_order_and_field() -> None:
    data, user, expected = _records()
    assert "1 missing" in dataset.compare("user", user, expected[1:], expected)[0]
    assert "duplicate" in dataset.compare("user", user, [*expected, expected[0]], expected)[0]
    assert "not newest first" in dataset.compare("user", user, expected[::-1], expected)[0]
    changed = [{**expected[0], "ap_id": None}, *expected[1:]] if expected[0]["ap_id"] else [
        {**expected[0], "ap_id": "web-portal-001"}, *expected[1:]]
    assert "differs" in dataset.compare("user", user, changed, expected)[0]


def test_compare_fail_query_only_failed() -> None:
    data, _, _ = _records()
    record = next(r for r in data.records if r["status"] != "FAILED")
    problems = dataset.compare("fail", record["transaction_id"], [dataset.as_api(record)], [])
    assert any("not FAILED" in p for p in problems)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([], 99)) == (50.0, 99.0, 0.0)


def test_judge_fails_on_p99_and_leaves_the_warm_up_out() -> None:
    fast = [Sample(10.0 + i / 100, "/query/user", 200, 20.0, f"r{i}", None) for i in range(200)]
    cold = [Sample(0.1, "/query/user", 200, 3000.0, "cold", None)]
    assert performance.judge(cold + fast, 20, 40).status is Status.PASS
    slow = fast + [Sample(20.0 + i, "/query/fail", 200, 700.0, f"s{i}", None) for i in range(5)]
    result = performance.judge(slow, 20, 40)
    assert result.status is Status.FAIL and "/query/fail: p99 700 ms" in result.evidence.failures[0]


def _invocation(function_id: str, request_id: str, report: bool = True) -> list[str]:
    lines = [f"START RequestId: {function_id} Version: $LATEST",
             json.dumps({"message": "query answered", "correlation_id": request_id,
                         "function_request_id": function_id}),
             f"END RequestId: {function_id}"]
    return lines + ([f"REPORT RequestId: {function_id}\tDuration: 1.00 ms"] if report else [])


def test_lambda_trail_needs_start_end_and_report() -> None:
    lines = _invocation("f1", "req-1") + _invocation("f2", "req-2", report=False)
    assert logs._lambda_trails(lines) == {"req-1"}


def test_stream_batch_lines_counted_per_invocation() -> None:
    with_counts = ["START RequestId: a Version: $LATEST",
                   json.dumps({"message": "batch processed", "records": 3}), "END RequestId: a"]
    without = ["START RequestId: b Version: $LATEST", "END RequestId: b"]
    assert logs._batch_lines(with_counts + without) == (2, 1)


def test_timeline_and_per_second_series() -> None:
    from harness.verify import charts
    from harness.verify.checks import availability

    samples = [Sample(0.2, "/query/user", 200, 10.0, "a", None), Sample(0.7, "/query/user", 502, 5.0, "b", "502"),
               Sample(1.5, "/query/fail", 200, 12.0, "c", None)]
    series = availability._per_second(samples)
    assert series == {"requests/s": [(0.0, 2.0), (1.0, 1.0)], "failures/s": [(0.0, 1.0), (1.0, 0.0)]}
    svg = charts.timeline({**series, "empty": []}, "requests/s")
    assert svg.startswith("<svg") and "requests/s" in svg
