"""The three query routes: payload sent to the Lambda, records (with ap_id) returned, paging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from service.invoker import QueryLambdaRequest
from tests.events import load_event
from tests.service.fakes import FakeInvoker, ServiceClient, seed_lambda

ROUTES = [
    ("/query/user", "user_id", "user", "test_user_001"),
    ("/query/marketing", "marketing_id", "marketing", "campaign_2024_new_year"),
    ("/query/fail", "transaction_id", "fail", "tx_002"),
]


def by_transaction(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["transaction_id"]: record for record in body["records"]}


def test_query_user_seed_user_returns_records_with_ap_id(client: ServiceClient) -> None:
    response = client.post("/query/user", json={"user_id": "test_user_001"})

    assert response.status_code == 200
    body = response.json()
    records = by_transaction(body)
    assert records["tx_001"]["ap_id"] == "mobile-app-001"
    assert records["tx_001"]["status"] == "SENT"
    assert records["tx_002"]["status"] == "FAILED"
    assert body["count"] == 3
    assert body["next_token"] is None


def test_query_user_pre_v3_record_has_ap_id_null_not_missing(client: ServiceClient) -> None:
    response = client.post("/query/user", json={"user_id": "test_user_001"})

    pre_v3 = by_transaction(response.json())["tx_003"]
    assert "ap_id" in pre_v3
    assert pre_v3["ap_id"] is None
    assert pre_v3["marketing_id"] is None


def test_query_marketing_campaign_returns_its_records(client: ServiceClient) -> None:
    response = client.post("/query/marketing", json={"marketing_id": "campaign_2024_new_year"})

    assert response.status_code == 200
    records = by_transaction(response.json())
    assert set(records) == {"tx_001", "tx_002"}
    assert {r["marketing_id"] for r in records.values()} == {"campaign_2024_new_year"}
    assert records["tx_002"]["ap_id"] == "web-portal-001"


def test_query_fail_transaction_returns_failed_record(client: ServiceClient) -> None:
    response = client.post("/query/fail", json={"transaction_id": "tx_002"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["records"][0]["status"] == "FAILED"
    assert body["records"][0]["error_msg"]
    assert body == {
        key: value for key, value in load_event("query/fail.response").items() if key != "ok"
    }


def test_query_unknown_id_returns_empty_page(client: ServiceClient) -> None:
    response = client.post("/query/user", json={"user_id": "nobody"})

    assert response.status_code == 200
    assert response.json() == {"records": [], "count": 0, "next_token": None}


@pytest.mark.parametrize(("path", "field", "query_type", "id_"), ROUTES)
def test_query_route_any_body_sends_lambda_payload(
    client: ServiceClient,
    fake_invoker: FakeInvoker,
    path: str,
    field: str,
    query_type: str,
    id_: str,
) -> None:
    response = client.post(path, json={field: f"  {id_}\t", "limit": 7, "next_token": "tok"})

    assert response.status_code == 200
    request, _ = fake_invoker.calls[-1]
    assert request == {"query_type": query_type, "id": id_, "limit": 7, "next_token": "tok"}


@pytest.mark.parametrize(("path", "field", "query_type", "id_"), ROUTES)
def test_query_route_defaults_limit_50_and_no_token(
    client: ServiceClient,
    fake_invoker: FakeInvoker,
    path: str,
    field: str,
    query_type: str,
    id_: str,
) -> None:
    client.post(path, json={field: id_})

    request, _ = fake_invoker.calls[-1]
    assert request["limit"] == 50
    assert request["next_token"] is None


def test_query_paging_token_passes_through_both_ways(client_factory: Any) -> None:
    pages = {None: ("first", "page-2-token"), "page-2-token": ("second", None)}

    def paging_lambda(request: QueryLambdaRequest, request_id: str) -> dict[str, Any]:
        title, token = pages[request["next_token"]]
        record = load_event("query/user.response")["records"][0]
        record["notification_title"] = title
        return {"ok": True, "records": [record], "count": 1, "next_token": token}

    client = client_factory(FakeInvoker(paging_lambda))

    first = client.post("/query/user", json={"user_id": "test_user_001", "limit": 1}).json()
    second = client.post(
        "/query/user",
        json={"user_id": "test_user_001", "limit": 1, "next_token": first["next_token"]},
    ).json()

    assert first["next_token"] == "page-2-token"
    assert first["records"][0]["notification_title"] == "first"
    assert second["records"][0]["notification_title"] == "second"
    assert second["next_token"] is None


def test_query_lambda_record_without_ap_id_key_answers_null(client_factory: Any) -> None:
    def old_lambda(request: QueryLambdaRequest, request_id: str) -> dict[str, Any]:
        record = load_event("query/user.response")["records"][2]
        del record["ap_id"]
        return {"ok": True, "records": [record], "count": 1, "next_token": None}

    response = client_factory(FakeInvoker(old_lambda)).post("/query/user", json={"user_id": "u"})

    assert response.status_code == 200
    assert response.json()["records"][0]["ap_id"] is None


def test_query_record_extra_attributes_are_not_returned(client_factory: Any) -> None:
    def leaky_lambda(request: QueryLambdaRequest, request_id: str) -> dict[str, Any]:
        record = load_event("query/user.response")["records"][0]
        record["source_sequence"] = "0" * 40
        return {"ok": True, "records": [record], "count": 1, "next_token": None}

    response = client_factory(FakeInvoker(leaky_lambda)).post("/query/user", json={"user_id": "u"})

    assert "source_sequence" not in response.json()["records"][0]


@pytest.mark.parametrize("limit", [1, 100, 50.0])
def test_query_limit_within_bounds_is_accepted(
    client: ServiceClient, fake_invoker: FakeInvoker, limit: float
) -> None:
    response = client.post("/query/user", json={"user_id": "u", "limit": limit})

    assert response.status_code == 200
    assert fake_invoker.calls[-1][0]["limit"] == int(limit)


@pytest.mark.parametrize("user_id", ["x" * 256, "ü" * 256, "😀" * 256, " a", "a\x00b", "\u00a0a"])
def test_query_id_at_edges_of_schema_is_accepted(client: ServiceClient, user_id: str) -> None:
    response = client.post("/query/user", json={"user_id": user_id})

    assert response.status_code == 200


def test_health_answers_ok_without_calling_lambda(
    client: ServiceClient, fake_invoker: FakeInvoker
) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "query-service", "version": "3.0.0"}
    assert fake_invoker.calls == []


def test_query_invoker_log_lines_carry_the_request_id(
    client_factory: Any, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    def logging_lambda(request: QueryLambdaRequest, request_id: str) -> dict[str, Any]:
        logging.getLogger("service.invoker").warning("from the invoke thread")
        return seed_lambda(request, request_id)

    client = client_factory(FakeInvoker(logging_lambda))
    log_lines()  # what creating the app logged
    response = client.post("/query/user", json={"user_id": "u1"}, headers={"X-Request-Id": "rid-7"})
    assert response.status_code == 200
    logged = [line for line in log_lines() if line["message"] == "from the invoke thread"]
    assert [line.get("request_id") for line in logged] == ["rid-7"]
