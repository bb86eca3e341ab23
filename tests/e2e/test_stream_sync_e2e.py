"""Command records reach the read side through the real stream path, ap_id included."""

from __future__ import annotations

import httpx


def test_command_with_ap_id_appears_on_read_side_and_in_api(
    api: httpx.Client, put_command, wait_for_sync, command_record_factory
) -> None:
    record = put_command(command_record_factory(ap_id="web-portal-001"))
    synced = wait_for_sync(record, expect={"ap_id": "web-portal-001"})
    assert synced["transaction_id"] == record["transaction_id"]
    records = api.post("/query/user", json={"user_id": record["user_id"]}).json()["records"]
    assert [r["ap_id"] for r in records] == ["web-portal-001"]


def test_command_without_ap_id_reads_back_as_null(
    api: httpx.Client, put_command, wait_for_sync, command_record_factory
) -> None:
    record = command_record_factory()
    del record["ap_id"]
    put_command(record)
    wait_for_sync(record)
    (read,) = api.post("/query/user", json={"user_id": record["user_id"]}).json()["records"]
    assert read["ap_id"] is None


def test_status_change_is_synced_as_modify(
    api: httpx.Client, put_command, wait_for_sync, command_record_factory
) -> None:
    record = put_command(command_record_factory(status="SENT"))
    wait_for_sync(record, expect={"status": "SENT"})
    put_command({**record, "status": "FAILED", "error_msg": "device unregistered"})
    wait_for_sync(record, expect={"status": "FAILED"})
    failed = api.post("/query/fail", json={"transaction_id": record["transaction_id"]}).json()[
        "records"
    ]
    assert [(r["status"], r["error_msg"]) for r in failed] == [("FAILED", "device unregistered")]


def test_deleted_command_disappears_from_read_side(
    aws, put_command, wait_for_sync, command_record_factory
) -> None:
    from harness.stack.commands import to_item

    record = put_command(command_record_factory())
    wait_for_sync(record)
    aws.dynamodb.delete_item(
        TableName="command-records",
        Key=to_item(
            {"transaction_id": record["transaction_id"], "created_at": record["created_at"]}
        ),
    )
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        item = aws.dynamodb.get_item(
            TableName="notification-records",
            Key=to_item({"user_id": record["user_id"], "created_at": record["created_at"]}),
        )
        if "Item" not in item:
            break
        time.sleep(0.05)
    assert "Item" not in item
