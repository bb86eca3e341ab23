"""The seed's examples and the V3 changes, end to end through the gateway."""

from __future__ import annotations

import httpx

from harness.stack.commands import load_seed


def test_query_user_seed_returns_records_with_ap_id_newest_first(api: httpx.Client) -> None:
    answer = api.post("/query/user", json={"user_id": "test_user_001"})
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    seeded = [r for r in load_seed() if r["user_id"] == "test_user_001"]
    assert [r["created_at"] for r in records] == sorted(
        (r["created_at"] for r in seeded), reverse=True
    )
    by_tx = {(r["transaction_id"], r["created_at"]): r for r in records}
    assert by_tx[("tx_001", 1704067200000)]["ap_id"] == "mobile-app-001"
    assert all("ap_id" in r for r in records)
    assert answer.json()["count"] == len(records)


def test_query_user_pre_v3_record_reads_back_with_null_ap_id(api: httpx.Client) -> None:
    records = api.post("/query/user", json={"user_id": "test_user_001"}).json()["records"]
    (pre_v3,) = [r for r in records if r["transaction_id"] == "tx_000"]
    assert pre_v3["ap_id"] is None


def test_query_fail_returns_only_failed_records(api: httpx.Client) -> None:
    answer = api.post("/query/fail", json={"transaction_id": "tx_002"})
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    assert records, "tx_002 has a FAILED record in the seed"
    assert {r["status"] for r in records} == {"FAILED"}
    assert {r["transaction_id"] for r in records} == {"tx_002"}
    assert records[0]["error_msg"]


def test_query_marketing_returns_the_campaign_across_users(api: httpx.Client) -> None:
    records = api.post("/query/marketing", json={"marketing_id": "campaign_2024_new_year"}).json()[
        "records"
    ]
    expected = {
        (r["transaction_id"], r["created_at"])
        for r in load_seed()
        if r.get("marketing_id") == "campaign_2024_new_year"
    }
    assert {(r["transaction_id"], r["created_at"]) for r in records} == expected
    assert {r["ap_id"] for r in records} >= {"mobile-app-001", "web-portal-001", "mobile-app-002"}


def test_query_user_pages_with_next_token(api: httpx.Client) -> None:
    first = api.post("/query/user", json={"user_id": "test_user_001", "limit": 1}).json()
    assert first["count"] == 1 and first["next_token"]
    second = api.post(
        "/query/user",
        json={"user_id": "test_user_001", "limit": 1, "next_token": first["next_token"]},
    ).json()
    assert second["records"][0]["created_at"] < first["records"][0]["created_at"]


def test_health_through_gateway_is_200(api: httpx.Client) -> None:
    assert api.get("/health").status_code == 200


def test_invalid_input_through_gateway_is_422_naming_the_field(api: httpx.Client) -> None:
    answer = api.post("/query/user", json={"user_id": "   "})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/json")
    assert any(e["field"].endswith("user_id") for e in answer.json()["errors"])


def test_request_id_is_forwarded_and_echoed(api: httpx.Client) -> None:
    answer = api.post(
        "/query/user", json={"user_id": "test_user_001"}, headers={"X-Request-Id": "req-e2e-42"}
    )
    assert answer.headers["x-request-id"] == "req-e2e-42"
