"""Cross-layer gates: gateway, Lambda, schemas, Terraform and sources agree with the contract.

Each gate is also shown to fail, with a message a reviewer can act on, when a copy of the
documents (or of the app) is broken on purpose.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.contracts.gates import (
    ap_id_in_contract,
    ap_id_in_record_schemas,
    definition_files,
    gateway_routes_match_contract,
    lambda_query_types_match_contract,
    old_paths_absent,
)
from harness.stack.infra import ROOT

CONTRACT = ROOT / "contracts" / "openapi.yaml"
API_DEFINITION = ROOT / "infra" / "api-gateway" / "internal-api.json"
QUERY_SCHEMA = ROOT / "contracts" / "schemas" / "query-request.schema.json"


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def api_definition() -> dict[str, Any]:
    return json.loads(API_DEFINITION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def query_schema() -> dict[str, Any]:
    return json.loads(QUERY_SCHEMA.read_text(encoding="utf-8"))


def test_gateway_routes_equal_contract_operations(api_definition, contract) -> None:
    assert gateway_routes_match_contract(api_definition, contract, "v1") == []


def test_gateway_gate_fails_when_old_route_is_readded(api_definition, contract) -> None:
    broken = copy.deepcopy(api_definition)
    broken["paths"]["/query/failure"] = broken["paths"]["/query/fail"]
    (problem,) = gateway_routes_match_contract(broken, contract, "v1")
    assert (
        problem
        == "internal-api.json routes POST /v1/query/failure, which the contract does not define"
    )


def test_gateway_gate_fails_when_route_forwards_elsewhere(api_definition, contract) -> None:
    broken = copy.deepcopy(api_definition)
    broken["paths"]["/query/fail"]["post"]["x-amazon-apigateway-integration"]["uri"] += "ure"
    assert any("forwards to" in p for p in gateway_routes_match_contract(broken, contract, "v1"))


def test_lambda_query_types_equal_contract_operations(query_schema, contract) -> None:
    assert lambda_query_types_match_contract(query_schema, contract) == []


def test_lambda_gate_fails_when_lambda_accepts_the_old_name(query_schema, contract) -> None:
    broken = copy.deepcopy(query_schema)
    broken["properties"]["query_type"]["enum"].append("failure")
    assert lambda_query_types_match_contract(broken, contract) == [
        "the query Lambda accepts query_type 'failure', which has no POST /query/failure in the contract"
    ]


def test_lambda_bundled_schema_is_the_contract_schema() -> None:
    bundled = [p for p in (ROOT / "lambdas" / "query").rglob("*.json") if "request" in p.name]
    assert bundled, "the query Lambda bundles its request schema"
    for path in bundled:
        assert json.loads(path.read_text()) == json.loads(QUERY_SCHEMA.read_text()), path


def test_ap_id_is_on_every_response_record(contract) -> None:
    assert ap_id_in_contract(contract) == []
    assert ap_id_in_record_schemas(ROOT / "contracts" / "schemas") == []


def test_ap_id_gate_fails_when_ap_id_is_dropped(contract) -> None:
    broken = copy.deepcopy(contract)
    record = broken["components"]["schemas"]["NotificationRecord"]
    del record["properties"]["ap_id"]
    assert ap_id_in_contract(broken) == [
        "NotificationRecord has no ap_id property (V3 adds it to every record)"
    ]


def test_ap_id_gate_fails_when_ap_id_is_made_optional_in_responses(contract) -> None:
    broken = copy.deepcopy(contract)
    record = broken["components"]["schemas"]["NotificationRecord"]
    record["required"].remove("ap_id")
    assert any("not required" in p for p in ap_id_in_contract(broken))


def test_old_paths_are_absent_from_every_definition_and_source() -> None:
    files = definition_files()
    assert any(p.suffix == ".tf" for p in files) and any(p.name == "openapi.yaml" for p in files)
    assert old_paths_absent(files) == []


def test_old_paths_gate_names_file_and_line_when_readded(tmp_path: Path) -> None:
    for part in ("contracts", "infra"):
        shutil.copytree(ROOT / part, tmp_path / part)
    tf = tmp_path / "infra" / "terraform" / "api-gateway.tf"
    tf.write_text(tf.read_text() + '\n# route "/query/failure" kept for old clients\n')
    problems = old_paths_absent(definition_files(tmp_path), tmp_path)
    assert len(problems) == 1 and problems[0].startswith("infra/terraform/api-gateway.tf:")


def test_drift_gate_fails_when_the_app_grows_an_old_route() -> None:
    from service import openapi as generator
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(), invoker=generator._NoInvoker())

    @app.post("/query/failure")
    def failure() -> dict[str, str]:
        return {}

    changes = generator.diff(
        generator.load(CONTRACT),
        json.loads(json.dumps(app.openapi())),
        "contracts/openapi.yaml",
        "app.openapi()",
    )
    assert "+  /query/failure:" in changes


def test_drift_gate_fails_when_a_response_field_is_renamed() -> None:
    from service import openapi as generator

    committed = generator.load(CONTRACT)
    renamed = copy.deepcopy(committed)
    props = renamed["components"]["schemas"]["NotificationRecord"]["properties"]
    props["title"] = props.pop("notification_title")
    changes = generator.diff(committed, renamed, "contracts/openapi.yaml", "app.openapi()")
    assert "-        notification_title:" in changes and "+        title:" in changes
