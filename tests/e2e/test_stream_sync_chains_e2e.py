"""Stream sync end to end, fault-free: MODIFY chains, REMOVE, paging, campaigns, rapid rewrites.

Every write goes to ``command-records``; every read goes through the gateway (or the read table
where the API has no view of it). Runs on every backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from harness.stack.commands import put_commands, to_item
from tests.e2e.eventually import eventually

Factory = Callable[..., dict[str, Any]]


def _all_pages(api: httpx.Client, path: str, body: dict[str, Any], limit: int) -> list[Any]:
    records: list[Any] = []
    token = None
    while True:
        answer = api.post(path, json={**body, "limit": limit, "next_token": token})
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["count"] == len(document["records"]) <= limit
        records += document["records"]
        token = document["next_token"]
        if not token:
            return records


def test_modify_chain_sent_delivered_failed_changes_and_removes_ap_id(
    api: httpx.Client, put_command, wait_for_sync, command_record_factory: Factory
) -> None:
    record = put_command(command_record_factory(status="SENT", ap_id="mobile-app-001"))
    wait_for_sync(record, expect={"status": "SENT", "ap_id": "mobile-app-001"})
    put_command({**record, "status": "DELIVERED", "ap_id": "web-portal-001"})
    wait_for_sync(record, expect={"status": "DELIVERED", "ap_id": "web-portal-001"})
    failed = {**record, "status": "FAILED", "error_msg": "token expired"}
    del failed["ap_id"]
    put_command(failed)
    wait_for_sync(record, expect=lambda item: item["status"] == "FAILED" and "ap_id" not in item)
    (read,) = api.post("/query/user", json={"user_id": record["user_id"]}).json()["records"]
    assert (read["status"], read["ap_id"], read["error_msg"]) == ("FAILED", None, "token expired")
    fail = api.post("/query/fail", json={"transaction_id": record["transaction_id"]}).json()
    assert [r["created_at"] for r in fail["records"]] == [record["created_at"]]


def test_remove_after_modify_leaves_nothing_in_any_view(
    api: httpx.Client, aws, put_command, wait_for_sync, command_record_factory: Factory
) -> None:
    record = put_command(command_record_factory(marketing_id=f"camp-rm-{time.time_ns()}"))
    put_command({**record, "status": "FAILED", "error_msg": "bounced"})
    wait_for_sync(record, expect={"status": "FAILED"})
    key = {"transaction_id": record["transaction_id"], "created_at": record["created_at"]}
    aws.dynamodb.delete_item(TableName="command-records", Key=to_item(key))

    def gone() -> None:
        for path, body in [
            ("/query/user", {"user_id": record["user_id"]}),
            ("/query/marketing", {"marketing_id": record["marketing_id"]}),
            ("/query/fail", {"transaction_id": record["transaction_id"]}),
        ]:
            assert api.post(path, json=body).json()["records"] == [], path

    eventually(gone)


def test_many_records_for_one_user_come_newest_first_across_pages(
    api: httpx.Client, aws, wait_for_sync, command_record_factory: Factory
) -> None:
    first = command_record_factory()
    records = [
        command_record_factory(user_id=first["user_id"], created_at=first["created_at"] + 7 * i,
                               ap_id=None if i % 3 == 0 else "mobile-app-002")
        for i in range(57)
    ]  # fmt: skip
    put_commands(aws.dynamodb, records)
    wait_for_sync(max(records, key=lambda r: r["created_at"]), timeout_s=20)

    def complete() -> list[Any]:
        read = _all_pages(api, "/query/user", {"user_id": first["user_id"]}, limit=10)
        assert len(read) == len(records)
        return read

    read = eventually(complete)
    assert [r["created_at"] for r in read] == sorted(
        (r["created_at"] for r in records), reverse=True
    )
    by_key = {r["created_at"]: r for r in records}
    for item in read:
        written = by_key[item["created_at"]]
        assert item["transaction_id"] == written["transaction_id"]
        assert item["ap_id"] == written["ap_id"]


def test_campaign_with_many_records_across_users_reads_back_whole(
    api: httpx.Client, aws, command_record_factory: Factory
) -> None:
    campaign = f"camp-e2e-{time.time_ns()}"
    records = [command_record_factory(marketing_id=campaign) for _ in range(43)]
    put_commands(aws.dynamodb, records)

    def complete() -> list[Any]:
        read = _all_pages(api, "/query/marketing", {"marketing_id": campaign}, limit=20)
        assert len(read) == len(records)
        return read

    read = eventually(complete)
    assert {(r["user_id"], r["created_at"]) for r in read} == {
        (r["user_id"], r["created_at"]) for r in records
    }


def test_fail_query_follows_status_changes_within_a_transaction(
    api: httpx.Client, aws, command_record_factory: Factory
) -> None:
    base = command_record_factory()
    tx = base["transaction_id"]
    records = [command_record_factory(transaction_id=tx, status="FAILED", error_msg=f"e{i}")
               for i in range(4)]  # fmt: skip
    put_commands(aws.dynamodb, records)
    eventually(lambda: _assert_fail_count(api, tx, 4))
    put_commands(aws.dynamodb, [{**records[1], "status": "DELIVERED", "error_msg": None},
                                {**records[3], "status": "SENT", "error_msg": None}])  # fmt: skip
    eventually(lambda: _assert_fail_count(api, tx, 2))
    read = api.post("/query/fail", json={"transaction_id": tx}).json()["records"]
    assert sorted(r["error_msg"] for r in read) == ["e0", "e2"]


def _assert_fail_count(api: httpx.Client, tx: str, count: int) -> None:
    assert len(api.post("/query/fail", json={"transaction_id": tx}).json()["records"]) == count


def test_same_key_written_many_times_quickly_ends_at_last_image(
    api: httpx.Client, aws, wait_for_sync, command_record_factory: Factory
) -> None:
    record = command_record_factory()
    statuses = ["SENT", "DELIVERED", "FAILED"]
    for i in range(30):
        aws.dynamodb.put_item(
            TableName="command-records",
            Item=to_item({**record, "status": statuses[i % 3], "notification_title": f"v{i}"}),
        )
    last = {"status": statuses[29 % 3], "notification_title": "v29"}
    wait_for_sync(record, expect=last, timeout_s=20)
    time.sleep(0.5)  # nothing older may land after it
    (read,) = api.post("/query/user", json={"user_id": record["user_id"]}).json()["records"]
    assert (read["status"], read["notification_title"]) == (last["status"], "v29")
