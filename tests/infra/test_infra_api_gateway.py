"""The internal API Gateway definition: exactly four routes over a VPC link, private, VPC only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from tests.infra.conftest import INFRA, TERRAFORM, load_json

ROUTES = {
    ("/query/user", "post"),
    ("/query/marketing", "post"),
    ("/query/fail", "post"),
    ("/health", "get"),
}
CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi.yaml"


def api():
    return load_json("api-gateway/internal-api.json")


def operations():
    return [
        (path, method, operation)
        for path, item in api()["paths"].items()
        for method, operation in item.items()
    ]


def test_api_definition_is_valid_openapi_3_0():
    document = api()

    validate(document)
    assert document["openapi"].startswith("3.0")
    assert document["info"]["description"]


def test_api_definition_has_exactly_the_four_routes():
    assert {(path, method) for path, method, _ in operations()} == ROUTES


def test_api_definition_never_mentions_old_paths():
    text = (INFRA / "api-gateway" / "internal-api.json").read_text()

    assert "/query/failure" not in text
    assert "/failed" not in text


@pytest.mark.parametrize(("path", "method"), sorted(ROUTES))
def test_route_is_http_proxy_over_vpc_link(path, method):
    integration = api()["paths"][path][method]["x-amazon-apigateway-integration"]

    assert integration["type"] == "http_proxy"
    assert integration["connectionType"] == "VPC_LINK"
    assert integration["connectionId"] == "${stageVariables.vpcLinkId}"
    assert integration["httpMethod"] == method.upper()
    assert integration["uri"].startswith("http://") and integration["uri"].endswith(path)
    assert integration["passthroughBehavior"] == "when_no_match"
    assert 50 <= integration["timeoutInMillis"] <= 29000


def test_api_is_private_with_vpc_only_resource_policy():
    document = api()
    statements = document["x-amazon-apigateway-policy"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    deny = [s for s in statements if s["Effect"] == "Deny"]

    assert "vpcEndpointIds" in document["x-amazon-apigateway-endpoint-configuration"]
    assert [(s["Action"], s["Resource"]) for s in allow] == [
        ("execute-api:Invoke", "execute-api:/*")
    ]
    assert len(deny) == 1
    assert deny[0]["Action"] == "execute-api:Invoke"
    assert "aws:SourceVpc" in deny[0]["Condition"]["StringNotEquals"]


def test_stage_base_path_is_v1():
    assert api()["servers"][0]["variables"]["basePath"]["default"] == "v1"


def test_every_deploy_time_placeholder_is_filled_by_terraform():
    text = (INFRA / "api-gateway" / "internal-api.json").read_text()
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    terraform = (TERRAFORM / "api-gateway.tf").read_text()
    stage_variables = {p.split(".", 1)[1] for p in placeholders if p.startswith("stageVariables.")}

    for name in placeholders - {f"stageVariables.{v}" for v in stage_variables}:
        assert f'"$${{{name}}}"' in terraform, f"api-gateway.tf does not fill ${{{name}}}"
    for variable in stage_variables:
        assert re.search(rf"^\s*{variable}\s*=", terraform, re.M), (
            f"stage variable {variable} unset"
        )


@pytest.mark.skipif(not CONTRACT.exists(), reason="contracts/openapi.yaml not written yet")
def test_api_routes_match_the_http_contract():
    contract = yaml.safe_load(CONTRACT.read_text())
    contract_routes = {
        (path, method)
        for path, item in contract["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }

    assert contract_routes == ROUTES
