"""Item 9b from a decision record: a denial fails naming role, action and resource; a grant never
used is a finding with its statement id, not a failure; no traffic is not a pass."""

from __future__ import annotations

from typing import Any

from harness.verify.checks.iam_live import item_9_last, observed_vs_granted
from harness.verify.model import Evidence, Status

GRANTS = {"query-lambda-role": [("QueryReadTable", "dynamodb:Query"),
                                ("QueryReadTable", "dynamodb:GetItem")]}
TABLE = "arn:aws:dynamodb:ap-southeast-1:123456789012:table/notification-records"


def _state(*rows: tuple[str, str, bool]) -> dict[str, Any]:
    return {"enforce": True, "decided_requests": len(rows), "mean_decision_ms": 0.2, "decisions": [
        {"role": role, "principal": f"arn:aws:sts::123456789012:assumed-role/{role}/s",
         "action": action, "resource": TABLE, "allowed": allowed, "count": 2,
         "first": 0.0, "last": 1.0, "statement": None}
        for role, action, allowed in rows]}


def test_a_denied_call_fails_naming_role_action_and_resource() -> None:
    evidence = Evidence()
    status = observed_vs_granted(
        _state(("query-lambda-role", "dynamodb:Query", True),
               ("query-lambda-role", "dynamodb:Scan", False)), GRANTS, evidence)
    assert status is Status.FAIL
    assert evidence.failures == [
        f"9b: query-lambda-role was denied dynamodb:Scan on {TABLE} (2x during the run)"]


def test_a_grant_never_used_is_a_finding_with_its_statement() -> None:
    evidence = Evidence()
    status = observed_vs_granted(_state(("query-lambda-role", "dynamodb:Query", True)),
                                 GRANTS, evidence)
    assert status is Status.PASS and not evidence.failures
    assert any(e.startswith("9b finding: query-lambda-role is granted dynamodb:GetItem "
                            "(QueryReadTable) but did not use it") for e in evidence.excerpts)
    assert evidence.tables[0].rows == [["query-lambda-role", "dynamodb:GetItem, dynamodb:Query",
                                        "dynamodb:Query", "dynamodb:GetItem (QueryReadTable)"]]


def test_other_principals_and_no_traffic_are_not_a_pass() -> None:
    evidence = Evidence()
    status = observed_vs_granted(_state(("someone-else", "dynamodb:Scan", False)), GRANTS, evidence)
    assert status is Status.NOT_CHECKED and not evidence.failures


def test_item_9_runs_last_and_is_reported_in_place() -> None:
    assert item_9_last(["1", "9", "10"]) == (["1", "10", "9"], ["1", "9", "10"])
