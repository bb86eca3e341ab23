"""wait_for_sync against a fake read table: a read key held by another transaction is no sync."""

from __future__ import annotations

from typing import Any

import pytest

from harness.stack.commands import SyncTimeout, to_item, wait_for_sync


class ReadTable:
    """A DynamoDB client whose GetItem always answers one item."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = to_item(item)

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": self.item}


HOLDER = {"user_id": "u", "created_at": 1, "transaction_id": "tx_a", "status": "SENT"}


def test_wait_for_sync_same_transaction_returns_the_record() -> None:
    record = wait_for_sync(ReadTable(HOLDER), "u", 1, transaction_id="tx_a", timeout_s=0)
    assert record["transaction_id"] == "tx_a"


def test_wait_for_sync_key_held_by_another_transaction_names_the_collision() -> None:
    with pytest.raises(SyncTimeout, match="holds transaction 'tx_a', not 'tx_b': a read-key"):
        wait_for_sync(
            ReadTable(HOLDER), "u", 1, expect={"status": "SENT"}, transaction_id="tx_b",
            timeout_s=0.05,
        )


def test_wait_for_sync_without_transaction_id_accepts_any_holder() -> None:
    assert wait_for_sync(ReadTable(HOLDER), "u", 1, timeout_s=0)["transaction_id"] == "tx_a"
