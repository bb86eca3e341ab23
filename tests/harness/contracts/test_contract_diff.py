"""The breaking-change checker on small documents built in the test."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.diff import Declaration, diff, load_declarations


def _doc() -> dict[str, Any]:
    record = {
        "type": "object",
        "required": ["user_id", "status"],
        "properties": {
            "user_id": {"type": "string"},
            "status": {"type": "string", "enum": ["SENT", "FAILED"]},
        },
    }
    request = {
        "type": "object",
        "required": ["user_id"],
        "properties": {"user_id": {"type": "string"}, "limit": {"type": "integer"}},
    }
    response = {
        "type": "object",
        "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/Rec"}}},
    }

    def op() -> dict[str, Any]:
        return {
            "requestBody": {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}
            },
            "responses": {
                "200": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Resp"}}
                    }
                }
            },
        }

    return {
        "openapi": "3.1.0",
        "paths": {"/query/user": {"post": op()}, "/query/failure": {"post": op()}},
        "components": {"schemas": {"Rec": record, "Req": request, "Resp": response}},
    }


def test_diff_identical_documents_reports_nothing() -> None:
    report = diff(_doc(), _doc())
    assert report.changes == []
    assert report.ok_strict


def test_diff_removed_path_is_breaking() -> None:
    new = _doc()
    del new["paths"]["/query/failure"]
    report = diff(_doc(), new)
    assert [c.id for c in report.undeclared_breaking] == ["path-removed:/query/failure"]
    assert not report.ok_strict


def test_diff_declared_rename_pairs_paths_and_passes_strict() -> None:
    new = _doc()
    new["paths"]["/query/fail"] = new["paths"].pop("/query/failure")
    decl = Declaration(
        "path-renamed:/query/failure -> /query/fail", "V3 rename", ("/query/failure", "/query/fail")
    )
    report = diff(_doc(), new, {decl.id: decl})
    assert [c.id for c in report.changes] == ["path-renamed:/query/failure -> /query/fail"]
    assert report.ok_strict
    assert report.lines()[0].startswith("declared")


def test_diff_undeclared_rename_is_removal_plus_addition() -> None:
    new = _doc()
    new["paths"]["/query/fail"] = new["paths"].pop("/query/failure")
    ids = {c.id for c in diff(_doc(), new).changes}
    assert ids == {"path-removed:/query/failure", "path-added:/query/fail"}


def test_diff_optional_response_field_is_not_breaking_and_grouped() -> None:
    new = _doc()
    new["components"]["schemas"]["Rec"]["properties"]["ap_id"] = {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    report = diff(_doc(), new)
    (change,) = report.changes
    assert change.kind == "optional-response-field-added"
    assert change.subject == ".records[].ap_id"
    assert set(change.where) == {"POST /query/user 200", "POST /query/failure 200"}
    assert report.ok_strict


def test_diff_removed_response_field_is_breaking() -> None:
    new = _doc()
    del new["components"]["schemas"]["Rec"]["properties"]["status"]
    report = diff(_doc(), new)
    assert {c.kind for c in report.undeclared_breaking} == {"response-field-removed"}


def test_diff_new_required_request_field_is_breaking() -> None:
    new = _doc()
    req = new["components"]["schemas"]["Req"]
    req["properties"]["tenant"] = {"type": "string"}
    req["required"].append("tenant")
    assert [c.kind for c in diff(_doc(), new).undeclared_breaking] == [
        "required-request-field-added"
    ]


def test_diff_optional_field_made_required_is_breaking() -> None:
    new = _doc()
    new["components"]["schemas"]["Req"]["required"].append("limit")
    assert [c.kind for c in diff(_doc(), new).undeclared_breaking] == ["request-field-now-required"]


def test_diff_retyped_response_field_is_breaking() -> None:
    new = _doc()
    new["components"]["schemas"]["Rec"]["properties"]["user_id"] = {"type": "integer"}
    (change,) = diff(_doc(), new).undeclared_breaking
    assert change.kind == "response-field-retyped" and change.detail == "string -> integer"


def test_diff_widened_request_type_is_not_breaking() -> None:
    new = _doc()
    new["components"]["schemas"]["Req"]["properties"]["limit"] = {"type": ["integer", "string"]}
    report = diff(_doc(), new)
    assert [c.kind for c in report.changes] == ["request-field-retyped"]
    assert report.ok_strict


def test_diff_narrowed_request_enum_is_breaking() -> None:
    old, new = _doc(), _doc()
    old["components"]["schemas"]["Req"]["properties"]["kind"] = {
        "type": "string",
        "enum": ["a", "b"],
    }
    new["components"]["schemas"]["Req"]["properties"]["kind"] = {"type": "string", "enum": ["a"]}
    (change,) = diff(old, new).undeclared_breaking
    assert change.kind == "request-enum-narrowed" and "b" in change.detail


def test_diff_widened_response_enum_is_breaking() -> None:
    new = _doc()
    new["components"]["schemas"]["Rec"]["properties"]["status"]["enum"].append("DELIVERED")
    (change,) = diff(_doc(), new).undeclared_breaking
    assert change.kind == "response-enum-widened"


def test_diff_removed_operation_is_breaking() -> None:
    new = copy.deepcopy(_doc())
    new["paths"]["/query/user"]["get"] = new["paths"]["/query/user"].pop("post")
    kinds = {c.kind for c in diff(_doc(), new).changes}
    assert kinds == {"operation-removed", "operation-added"}


def test_diff_declaration_that_matches_nothing_is_stale() -> None:
    decl = Declaration("path-removed:/nowhere", "typo")
    report = diff(_doc(), _doc(), {decl.id: decl})
    assert not report.ok_strict
    assert any(line.startswith("STALE") for line in report.lines())


def test_load_declarations_requires_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "declared.yaml"
    path.write_text("changes:\n  - id: path-removed:/failed\n")
    with pytest.raises(ValueError, match="changes/0: .reason. is a required property"):
        load_declarations(path)


def test_load_declarations_reads_renames_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "declared.yaml"
    path.write_text(
        "changes:\n"
        "  - rename: {from: /query/failure, to: /query/fail}\n    reason: shorter name\n"
        "  - id: path-removed:/failed\n    reason: alias dropped\n"
    )
    decls = load_declarations(path)
    assert set(decls) == {"path-renamed:/query/failure -> /query/fail", "path-removed:/failed"}
