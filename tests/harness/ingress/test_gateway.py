"""Gateway: stage, defined routes only, resource policy, timeouts, request ids, access log."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.ingress.api_definition import ApiDefinition, GatewayDefinitionError
from harness.ingress.gateway import Gateway
from harness.ingress.servers import ASGIServer
from tests.harness.ingress.gateway_documents import (
    MISSING_TOKEN,
    REPO_API,
    api_document,
    create_echo_app,
    integration,
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ASGIServer]:
    with ASGIServer(create_echo_app("alb"), name="upstream") as server:
        yield server


@pytest.fixture(scope="module")
def access_records() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module", params=["http", "same-loop"])
def gateway(
    request: pytest.FixtureRequest, upstream: ASGIServer, access_records: list[dict[str, Any]]
) -> Iterator[Gateway]:
    """Each gateway test runs against both: the upstream over HTTP, and the upstream's app
    called in-process on its server's event loop (as the stack wires the gateway to the ALB)."""
    in_process: dict[str, Any] = (
        {"upstream_app": upstream.app, "loop_host": upstream}
        if request.param == "same-loop"
        else {}
    )
    with Gateway(
        api_document(), upstream.url, access_log=access_records.append, **in_process
    ) as gw:
        yield gw


@pytest.fixture
def api(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url) as client:
        yield client


def test_gateway_defined_route_forwarded_without_stage(api: httpx.Client) -> None:
    response = api.post(
        "/v1/query/user?limit=2", json={"user_id": "u1"}, headers={"X-Custom": "yes"}
    )
    assert response.status_code == 200
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("POST", "/query/user", "limit=2")
    assert json.loads(echoed["body"]) == {"user_id": "u1"}
    assert echoed["headers"]["x-custom"] == "yes"
    assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert response.headers["x-upstream"] == "alb"
    assert len(response.headers.get_list("date")) == 1
    assert "x-amzn-remapped-date" in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/query/user"),  # undefined method
        ("POST", "/v1/query/failure"),  # the pre-V3 path
        ("POST", "/v1/failed"),
        ("GET", "/v2/health"),  # wrong stage
        ("GET", "/health"),  # no stage
        ("GET", "/v1health"),
        ("GET", "/v1"),
        ("DELETE", "/v1/health"),
        ("GET", "/v1/files"),  # a greedy parameter needs at least one segment
    ],
)
def test_gateway_undefined_route_answers_missing_authentication_token(
    api: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)
    assert response.status_code == 403
    assert response.json() == MISSING_TOKEN
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.headers["x-amzn-RequestId"]


def test_gateway_greedy_proxy_maps_to_integration_path(api: httpx.Client) -> None:
    response = api.put("/v1/files/a/b.txt?x=1", content=b"data")
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("PUT", "/mirror/a/b.txt", "x=1")
    assert echoed["body"] == "data"


def test_gateway_upstream_5xx_passes_through(api: httpx.Client) -> None:
    response = api.get("/v1/status/502")
    assert response.status_code == 502
    assert response.json() == {"target": "alb", "status": 502}


def test_gateway_slow_upstream_answers_504(api: httpx.Client) -> None:
    response = api.get("/v1/slow/1500")
    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}
    assert api.get("/v1/slow/0").status_code == 200


def test_gateway_request_ids_generated_and_forwarded(api: httpx.Client) -> None:
    response = api.get("/v1/health")
    request_id = response.headers["x-request-id"]
    uuid.UUID(response.headers["x-amzn-requestid"])
    seen = response.json()["headers"]
    assert seen["x-request-id"] == request_id
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", seen["x-amzn-trace-id"])
    assert response.headers["x-amzn-trace-id"] == seen["x-amzn-trace-id"]


def test_gateway_client_request_id_and_trace_kept(api: httpx.Client) -> None:
    trace = "Root=1-5f84c7a1-0123456789abcdef01234567"
    response = api.get("/v1/health", headers={"X-Request-Id": "req-42", "X-Amzn-Trace-Id": trace})
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-amzn-requestid"] != "req-42"
    seen = response.json()["headers"]
    assert (seen["x-request-id"], seen["x-amzn-trace-id"]) == ("req-42", trace)


def test_gateway_access_log_callable_gets_record(
    api: httpx.Client, access_records: list[dict[str, Any]]
) -> None:
    response = api.post("/v1/query/fail", json={"transaction_id": "tx_002"})
    request_id = response.headers["x-amzn-requestid"]
    # The access log line is written once the response has gone out: wait for it, briefly.
    deadline = time.monotonic() + 5
    while (
        not any(r["requestId"] == request_id for r in access_records)
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    (record,) = [r for r in access_records if r["requestId"] == request_id]
    assert (record["method"], record["path"], record["resourcePath"]) == (
        "POST",
        "/v1/query/fail",
        "/query/fail",
    )
    assert (record["status"], record["ip"]) == (200, "127.0.0.1")
    assert record["integrationLatencyMs"] >= 0 and record["latencyMs"] >= 0


def test_gateway_access_log_file_lines_are_json(upstream: ASGIServer, tmp_path: Path) -> None:
    log_path = tmp_path / "access.log"
    with Gateway(api_document(), upstream.url, access_log=log_path) as gw:
        httpx.get(f"{gw.stage_url}/health")
        httpx.get(f"{gw.stage_url}/nope")
    first, second = (json.loads(line) for line in log_path.read_text().splitlines())
    assert (first["status"], first["path"]) == (200, "/v1/health")
    assert (second["status"], second["errorType"]) == (403, "MissingAuthenticationTokenException")
    assert second["integrationLatencyMs"] is None


def test_gateway_source_outside_vpc_cidrs_denied_by_policy(upstream: ASGIServer) -> None:
    with Gateway(
        api_document(), upstream.url, allowed_source_cidrs=["10.0.0.0/16"], api_id="a1b2c3d4e5"
    ) as gw:
        response = httpx.post(f"{gw.stage_url}/query/user", json={})
        undefined = httpx.get(f"{gw.stage_url}/query/failure")
    assert response.status_code == 403
    assert response.json() == {
        "Message": "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:ap-southeast-1:000000000000:a1b2c3d4e5/v1/POST/query/user"
    }
    assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert undefined.json() == MISSING_TOKEN


def test_gateway_policy_without_deny_admits_any_source(upstream: ASGIServer) -> None:
    document = api_document(deny_outside_vpc=False)
    with Gateway(document, upstream.url, allowed_source_cidrs=["10.0.0.0/16"]) as gw:
        assert httpx.get(f"{gw.stage_url}/health").status_code == 200


def test_gateway_same_loop_upstream_app_failure_answers_500_json(upstream: ASGIServer) -> None:
    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with Gateway(api_document(), upstream.url, upstream_app=failing, loop_host=upstream) as gw:
        response = httpx.get(f"{gw.stage_url}/health")
        assert gw.server.loop is upstream.loop  # served on the upstream's loop
    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error"}
    assert upstream.running  # the host goes on serving after its guest stopped


def test_gateway_policy_decision_is_per_source_address(upstream: ASGIServer) -> None:
    """Decisions are kept per (resource, source): an admitted address does not admit another."""
    with Gateway(api_document(), upstream.url, allowed_source_cidrs=["127.0.0.1/32"]) as gw:
        statuses = []
        for source in ("127.0.0.2", "127.0.0.1", "127.0.0.2", "127.0.0.1"):
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport) as client:
                statuses.append(client.get(f"{gw.stage_url}/health").status_code)
    assert statuses == [403, 200, 403, 200]


def test_gateway_upstream_down_answers_500_json() -> None:
    with Gateway(api_document(), "http://127.0.0.1:9") as gw:
        response = httpx.get(f"{gw.stage_url}/health")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error"}


def test_api_definition_missing_integration_names_the_field() -> None:
    document = api_document()
    document["paths"]["/broken"] = {"get": {"responses": {}}}
    with pytest.raises(GatewayDefinitionError, match=r"paths\./broken\.get: missing"):
        ApiDefinition.load(document)


def test_api_definition_unreadable_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "internal-api.json"
    bad.write_text("{not json")
    with pytest.raises(GatewayDefinitionError, match="internal-api.json: cannot read JSON"):
        ApiDefinition.load(bad)


def test_api_definition_literal_route_beats_parameter() -> None:
    document = api_document()
    document["paths"]["/status/ok"] = {"get": integration("GET", "/health")}
    found = ApiDefinition.load(document).find("GET", "/status/ok")
    assert found is not None and found[0].resource == "/status/ok"


def test_api_definition_repository_file_serves_v3_routes_only() -> None:
    api = ApiDefinition.load(REPO_API)
    assert api.find("POST", "/query/fail") is not None
    assert api.find("GET", "/health") is not None
    assert api.find("POST", "/query/failure") is None
    assert api.policy is not None
