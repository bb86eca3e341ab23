"""The V2 -> V3 breaking-change report on the committed contracts, and that it catches breakage."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.diff import diff, load_declarations, load_document

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


@pytest.fixture(scope="module")
def v2() -> dict[str, Any]:
    return load_document(CONTRACTS / "openapi-v2.yaml")


@pytest.fixture(scope="module")
def v3() -> dict[str, Any]:
    return load_document(CONTRACTS / "openapi.yaml")


@pytest.fixture(scope="module")
def declared() -> dict[str, Any]:
    return load_declarations(CONTRACTS / "declared-changes.yaml")


def test_v2_to_v3_reports_exactly_the_rename_the_alias_and_ap_id(v2, v3, declared) -> None:
    report = diff(v2, v3, declared)
    summary = {(c.kind, c.subject) for c in report.changes}
    assert summary == {
        ("path-renamed", "/query/failure -> /query/fail"),
        ("path-removed", "/failed"),
        ("optional-response-field-added", ".records[].ap_id"),
    }
    assert report.ok_strict, "\n".join(report.lines())


def test_v2_to_v3_ap_id_is_added_to_every_query_response(v2, v3, declared) -> None:
    (ap_id,) = [c for c in diff(v2, v3, declared).changes if c.subject.endswith("ap_id")]
    assert set(ap_id.where) == {
        "POST /query/user 200",
        "POST /query/marketing 200",
        "POST /query/fail 200",
    }


def _record_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]["NotificationRecord"]


@pytest.mark.parametrize(
    "mutation",
    ["rename_field", "readd_failure", "drop_ap_id", "add_required_field", "retype_limit"],
)
def test_v3_gate_fails_when_contract_is_broken_on_purpose(v2, v3, declared, mutation: str) -> None:
    broken = copy.deepcopy(v3)
    record = _record_schema(broken)
    if mutation == "rename_field":
        record["properties"]["title"] = record["properties"].pop("notification_title")
        if "notification_title" in record.get("required", []):
            record["required"] = [
                ("title" if r == "notification_title" else r) for r in record["required"]
            ]
    elif mutation == "readd_failure":
        broken["paths"]["/query/failure"] = broken["paths"]["/query/fail"]
    elif mutation == "drop_ap_id":
        del record["properties"]["ap_id"]
        record["required"] = [r for r in record.get("required", []) if r != "ap_id"]
    elif mutation == "add_required_field":
        request = broken["components"]["schemas"]["UserQueryRequest"]
        request["properties"]["tenant_id"] = {"type": "string"}
        request["required"] = [*request.get("required", []), "tenant_id"]
    elif mutation == "retype_limit":
        broken["components"]["schemas"]["UserQueryRequest"]["properties"]["limit"] = {
            "type": "string"
        }
    # Against V3 itself, each mutation is a breaking change the release did not declare...
    against_v3 = diff(v3, broken, {})
    assert against_v3.undeclared_breaking or mutation == "readd_failure", "\n".join(
        against_v3.lines()
    )
    if mutation == "drop_ap_id":
        return  # V2 never had ap_id: only the comparison with the committed V3 contract sees it go.
    # ...and against V2 the strict gate fails (re-adding /query/failure makes the rename stale).
    report = diff(v2, broken, declared)
    assert not report.ok_strict, "\n".join(report.lines())
