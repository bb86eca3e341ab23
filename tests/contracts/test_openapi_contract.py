"""Contract gate: generated OpenAPI equals contracts/openapi.yaml; the V2 contract beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from service import openapi as contract

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
V3_PATH = CONTRACTS / "openapi.yaml"
V2_PATH = CONTRACTS / "openapi-v2.yaml"
QUERY_PATHS = {"/query/user", "/query/marketing", "/query/fail"}
ERROR_STATUSES = {"400", "422", "502", "503", "504"}


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    """The OpenAPI document the app generates now."""
    return contract.generate_v3()


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    """contracts/openapi.yaml."""
    return contract.load(V3_PATH)


@pytest.fixture(scope="module")
def committed_v2() -> dict[str, Any]:
    """contracts/openapi-v2.yaml."""
    return contract.load(V2_PATH)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def fix_hint(what: str) -> str:
    return f"{what} differs from the app; run `python -m service.openapi` and review the diff"


def test_openapi_generated_equals_committed_contract(
    generated: dict[str, Any], committed: dict[str, Any]
) -> None:
    changes = contract.diff(committed, generated, "contracts/openapi.yaml", "app.openapi()")

    assert not changes, f"{fix_hint('contracts/openapi.yaml')}\n{changes}"


@pytest.mark.parametrize("part", ["openapi", "info", "paths", "components"])
def test_openapi_contract_part_equals_generated(
    generated: dict[str, Any], committed: dict[str, Any], part: str
) -> None:
    assert committed.get(part) == generated.get(part), fix_hint(part)


def test_openapi_contract_has_exactly_the_v3_operations(committed: dict[str, Any]) -> None:
    assert {
        (path, method, operation["operationId"])
        for (path, method), operation in operations(committed).items()
    } == {
        ("/query/user", "post", "queryUser"),
        ("/query/marketing", "post", "queryMarketing"),
        ("/query/fail", "post", "queryFail"),
        ("/health", "get", "health"),
    }


def test_openapi_contract_documents_every_error_status(committed: dict[str, Any]) -> None:
    for (path, _), operation in operations(committed).items():
        if path not in QUERY_PATHS:
            continue
        responses = operation["responses"]
        assert ERROR_STATUSES <= set(responses), path
        for status in ERROR_STATUSES:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)


def test_openapi_contract_record_requires_nullable_ap_id(committed: dict[str, Any]) -> None:
    record = committed["components"]["schemas"]["NotificationRecord"]

    assert "ap_id" in record["required"]
    assert {"type": "null"} in record["properties"]["ap_id"]["anyOf"]


def test_openapi_contract_ids_are_bounded_and_non_blank(committed: dict[str, Any]) -> None:
    schemas = committed["components"]["schemas"]
    for name, field in [
        ("UserQueryRequest", "user_id"),
        ("MarketingQueryRequest", "marketing_id"),
        ("FailQueryRequest", "transaction_id"),
    ]:
        schema = schemas[name]
        assert schema["additionalProperties"] is False
        assert schema["required"] == [field]
        assert {"maxLength": 256, "pattern": r"\S"}.items() <= schema["properties"][field].items()


def test_openapi_contract_has_no_old_failure_paths() -> None:
    text = V3_PATH.read_text(encoding="utf-8")

    assert "/query/failure" not in text
    assert "/failed" not in text


@pytest.mark.parametrize("path", [V3_PATH, V2_PATH], ids=["v3", "v2"])
def test_openapi_contract_file_is_a_valid_openapi_document(path: Path) -> None:
    validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_openapi_v2_has_old_paths_and_no_ap_id(committed_v2: dict[str, Any]) -> None:
    text = V2_PATH.read_text(encoding="utf-8")

    assert {"/query/failure", "/failed"} <= set(committed_v2["paths"])
    assert "/query/fail" not in committed_v2["paths"]
    assert "ap_id" not in text


def test_openapi_check_command_passes_on_committed_contracts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert contract.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_openapi_check_command_fails_on_stale_contract(
    tmp_path: Path, committed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stale = dict(committed, paths={**committed["paths"], "/failed": {}})
    (tmp_path / "openapi.yaml").write_text(contract.to_yaml(stale), encoding="utf-8")

    assert contract.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "-  /failed: {}" in capsys.readouterr().err


def test_openapi_write_command_writes_the_v3_contract_only(tmp_path: Path) -> None:
    assert contract.main(["--dir", str(tmp_path)]) == 0

    assert contract.load(tmp_path / "openapi.yaml") == contract.load(V3_PATH)
    assert not (tmp_path / "openapi-v2.yaml").exists(), "V2 is frozen, never regenerated"
