"""`put-command` checks the record first and reports a rejection at once (issue 11, point 4)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.stack.provision import aws_client
from tests.harness.cli.cli_run import run

Stack = tuple[Path, dict[str, Any]]


def _record(**overrides: Any) -> dict[str, Any]:
    n = time.time_ns()
    record = {
        "transaction_id": f"tx_cli_{n}",
        "created_at": n // 1_000_000,
        "user_id": f"user_cli_{n}",
        "ap_id": "mobile-app-001",
        "notification_title": "hi",
        "status": "SENT",
        "platform": "IOS",
        "device_token": "t",
        "payload": "{}",
    }
    record.update(overrides)
    return record


def test_cli_put_command_invalid_status_is_refused_before_writing(detached_stack: Stack) -> None:
    state_dir, state = detached_stack
    record = _record(status="WAT")
    result = run("put-command", json.dumps(record), state_dir=state_dir)
    assert result.returncode == 1
    assert "status: 'WAT' is not one of" in result.stderr and "nothing was written" in result.stderr
    item = aws_client("dynamodb", state["edge_url"], state["region"]).get_item(
        TableName="command-records",
        Key={"transaction_id": {"S": record["transaction_id"]}, "created_at": {"N": str(record["created_at"])}},
    )
    assert "Item" not in item


def test_cli_put_command_rejected_by_the_function_says_why_at_once(detached_stack: Stack) -> None:
    state_dir, _ = detached_stack
    record = _record(status="WAT")
    # A long timeout: were the rejection not seen, this would end in "no such record was seen".
    result = run(
        "put-command", json.dumps(record), "--no-validate", "--timeout", "90", state_dir=state_dir
    )
    assert result.returncode == 1, result.stdout
    message = " ".join(result.stderr.split())
    assert "was rejected by stream-processor" in message, message
    assert "status" in message and "on-failure queue" in message, message
    assert "no such record was seen" not in message


def test_cli_put_command_valid_record_reaches_the_read_side(detached_stack: Stack) -> None:
    state_dir, _ = detached_stack
    result = run("put-command", json.dumps(_record()), state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    assert '"ap_id": "mobile-app-001"' in result.stdout and "wrote 1 command record" in result.stdout
