"""Issue 18: two transactions of one user in the same millisecond, through the real stream path.

`notification-records` is keyed (user_id, created_at), so the second transaction on a read key
cannot be shown (docs/decisions/0001-read-key-collisions.md). It must never vanish silently: the
stream processor reports it as a failed record (retried, then in the on-failure queue), logs a
line naming both transaction ids, and the transaction already holding the key is left intact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from harness.cli.app import app as cli_app
from harness.readside import CollisionLine, read_collisions
from harness.readside.collisions import DLQ_NAME
from harness.stack import commands
from harness.stack.commands import SyncTimeout, put_commands, to_item
from harness.stack.failures import RecordRejected

#: Five retries with the mapping's backoff take a few seconds; leave room for a loaded machine.
REPORT_TIMEOUT_S = 90.0


def _wait_for(what: str, probe: Callable[[], Any], timeout_s: float = REPORT_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout_s:g} s: {what}")
        time.sleep(0.2)


def _collisions(aws: Any, since_ms: int, transaction_id: str) -> list[CollisionLine]:
    """Collision log lines about `transaction_id` (an image of it that was not applied)."""
    report = read_collisions(aws.logs, since_ms=since_ms)
    return [line for line in report.lines if line.transaction_id == transaction_id]


def _in_dlq(aws: Any, since_ms: int, sequence_number: str) -> bool:
    report = read_collisions(aws.logs, aws.sqs, since_ms=since_ms)
    return any(line.sequence_number == sequence_number and line.in_dlq for line in report.lines)


def _query(api: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.post(path, json=body)
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()["records"]
    return records


def _now_ms() -> int:
    return int(time.time() * 1000) - 5_000  # log timestamps of a loaded machine can lag


@dataclass(frozen=True)
class Collided:
    """tx_a holds the read key; tx_b (same user, same millisecond) was reported."""

    tx_a: dict[str, Any]
    tx_b: dict[str, Any]
    since_ms: int
    report: CollisionLine


@pytest.fixture
def collided(aws, put_command, wait_for_sync, command_record_factory) -> Collided:
    """Write tx_a, wait until it is read, then tx_b on the same key; wait for its report."""
    since = _now_ms()
    tx_a = command_record_factory(marketing_id=f"camp_1_{time.monotonic_ns()}")
    tx_b = command_record_factory(
        user_id=tx_a["user_id"],
        created_at=tx_a["created_at"],
        marketing_id=f"camp_2_{time.monotonic_ns()}",
    )
    put_command(tx_a)
    wait_for_sync(tx_a, expect={"transaction_id": tx_a["transaction_id"]})
    put_command(tx_b)
    (report, *_) = _wait_for(
        f"no collision log line for {tx_b['transaction_id']}",
        lambda: _collisions(aws, since, tx_b["transaction_id"]),
    )
    return Collided(tx_a, tx_b, since, report)


def test_second_transaction_on_a_read_key_is_reported_and_the_first_kept(
    api: httpx.Client, aws, stack, wait_for_sync, collided: Collided
) -> None:
    tx_a, tx_b, since, report = collided.tx_a, collided.tx_b, collided.since_ms, collided.report

    assert report.holder_transaction_id == tx_a["transaction_id"]
    assert report.level == "ERROR" and report.reported_failed
    assert tx_a["transaction_id"] in report.message
    assert tx_b["transaction_id"] in report.message
    _wait_for(
        f"sequence {report.sequence_number} of {tx_b['transaction_id']} not in {DLQ_NAME}",
        lambda: _in_dlq(aws, since, report.sequence_number),
    )
    user = _query(api, "/query/user", {"user_id": tx_a["user_id"]})
    assert [r["transaction_id"] for r in user] == [tx_a["transaction_id"]]
    assert user[0]["marketing_id"] == tx_a["marketing_id"]
    camp_1 = _query(api, "/query/marketing", {"marketing_id": tx_a["marketing_id"]})
    assert [r["transaction_id"] for r in camp_1] == [tx_a["transaction_id"]]
    assert _query(api, "/query/marketing", {"marketing_id": tx_b["marketing_id"]}) == []
    # the key's item is tx_a's: tx_b never syncs, and it is in the on-failure queue already
    with pytest.raises(RecordRejected, match="a read-key collision"):
        wait_for_sync(tx_b, timeout_s=5)
    with pytest.raises(SyncTimeout, match="a read-key collision"):  # without the queue's word
        commands.wait_for_sync(
            aws.dynamodb, tx_b["user_id"], int(tx_b["created_at"]),
            transaction_id=tx_b["transaction_id"], timeout_s=0.5,
        )

    # The troubleshooting command shows it too.
    shown = CliRunner().invoke(
        cli_app, ["collisions", "--json", "--since", "30", "--endpoint-url", str(stack.edge_url)]
    )
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.output)
    assert tx_b["transaction_id"] in listed["transactions_not_applied"]
    assert listed["metric"]["sum"] >= 1


def test_modify_and_remove_of_either_colliding_transaction(
    api: httpx.Client, aws, put_command, wait_for_sync, collided: Collided
) -> None:
    tx_a, tx_b, since = collided.tx_a, collided.tx_b, collided.since_ms

    # MODIFY of the transaction that does not hold the key: reported again, nothing overwritten.
    put_command({**tx_b, "status": "FAILED", "error_msg": "tx_b failed"})
    _wait_for(
        "tx_b's MODIFY not reported",
        lambda: any(
            e.event_name == "MODIFY" for e in _collisions(aws, since, tx_b["transaction_id"])
        ),
    )
    # MODIFY of the holder: applied.
    put_command({**tx_a, "status": "DELIVERED"})
    held = wait_for_sync(tx_a, expect={"status": "DELIVERED"})
    assert held["transaction_id"] == tx_a["transaction_id"]
    assert _query(api, "/query/fail", {"transaction_id": tx_b["transaction_id"]}) == []

    # REMOVE of the transaction that does not hold the key must not delete the holder's item.
    key = {"transaction_id": tx_b["transaction_id"], "created_at": tx_b["created_at"]}
    aws.dynamodb.delete_item(TableName="command-records", Key=to_item(key))
    _wait_for(
        "tx_b's REMOVE not logged",
        lambda: any(
            e.event_name == "REMOVE" for e in _collisions(aws, since, tx_b["transaction_id"])
        ),
    )
    user = _query(api, "/query/user", {"user_id": tx_a["user_id"]})
    assert [(r["transaction_id"], r["status"]) for r in user] == [
        (tx_a["transaction_id"], "DELIVERED")
    ]

    # REMOVE of the holder: the read key is empty.
    key = {"transaction_id": tx_a["transaction_id"], "created_at": tx_a["created_at"]}
    aws.dynamodb.delete_item(TableName="command-records", Key=to_item(key))
    _wait_for(
        "tx_a's REMOVE did not empty the read key",
        lambda: _query(api, "/query/user", {"user_id": tx_a["user_id"]}) == [],
    )


def test_oracle_every_written_record_is_shown_or_reported(
    api: httpx.Client, aws, command_record_factory
) -> None:
    """'0 lost' includes colliding keys: each record is on the read side or reported, never both."""
    since = _now_ms()
    written: list[dict[str, Any]] = []
    for user in range(3):
        first = command_record_factory(marketing_id=f"oracle_camp_{user}")
        written.append(first)
        for _ in range(user):  # user 0: no collision, user 1: one, user 2: two on one key
            written.append(
                command_record_factory(
                    user_id=first["user_id"], created_at=first["created_at"], platform="IOS"
                )
            )
            written.append(command_record_factory(user_id=first["user_id"], status="FAILED"))
    put_commands(aws.dynamodb, written)

    missing: set[str] = set()

    def accounted() -> tuple[dict[str, dict[str, Any]], set[str]] | None:
        shown = {}
        for user_id in {r["user_id"] for r in written}:
            for record in _query(api, "/query/user", {"user_id": user_id, "limit": 100}):
                shown[record["transaction_id"]] = record
        reported = read_collisions(aws.logs, since_ms=since).transactions
        missing.clear()
        missing.update({r["transaction_id"] for r in written} - set(shown) - reported)
        return None if missing else (shown, reported)

    try:
        shown, reported = _wait_for("some written record is neither shown nor reported", accounted)
    except AssertionError as error:
        raise AssertionError(f"{error}: lost {sorted(missing)}") from None
    keys = {(r["user_id"], r["created_at"]) for r in written}
    assert len(shown) == len(keys), "one record per read key is shown"
    assert not set(shown) & reported, "a shown record is never reported as a collision"
    assert len(reported & {r["transaction_id"] for r in written}) == len(written) - len(keys)
    for record in written:
        if record["transaction_id"] in shown:
            read = shown[record["transaction_id"]]
            for field in ("user_id", "created_at", "marketing_id", "status", "platform"):
                assert read[field] == record.get(field), (field, read, record)
