"""Writing command records and waiting for them to reach the read side through the stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from harness.stack.failures import FailureWatch
from harness.stack.infra import ROOT

COMMAND_TABLE = "command-records"
#: how often the on-failure queue is peeked while waiting (a rejection arrives after retries)
WATCH_INTERVAL_S = 0.25
READ_TABLE = "notification-records"


def seed_file(root: Path = ROOT) -> Path:
    """The seed command records of the project at ``root``."""
    return root / "contracts" / "seed" / "command-records.json"


SEED_FILE = seed_file()

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class SyncTimeout(AssertionError):
    """A command record did not show up on the read side in time; says what was seen."""


class InvalidCommandRecord(ValueError):
    """A command record does not match contracts/schemas/command-record.schema.json."""


def schema_errors(record: Any, root: Path = ROOT) -> list[str]:
    """What is wrong with ``record`` by the command-record schema ('field: problem'), or []."""
    from jsonschema import Draft202012Validator

    schema = json.loads(
        (root / "contracts" / "schemas" / "command-record.schema.json").read_text(encoding="utf-8")
    )
    errors = sorted(Draft202012Validator(schema).iter_errors(record), key=lambda e: list(e.path))
    return [f"{'.'.join(str(p) for p in e.path) or 'record'}: {e.message}" for e in errors]


def validate_command(record: Any, root: Path = ROOT) -> None:
    """Raise :class:`InvalidCommandRecord` naming every problem, before anything is written."""
    problems = schema_errors(record, root)
    if problems:
        raise InvalidCommandRecord(
            "not a valid command record (contracts/schemas/command-record.schema.json): "
            + "; ".join(problems)
        )


def to_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """A plain record as DynamoDB JSON; null attributes are left out, as the writers do."""
    return {k: _serializer.serialize(v) for k, v in record.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON as plain values (integral numbers as int)."""
    out = {}
    for key, value in item.items():
        plain = _deserializer.deserialize(value)
        if isinstance(plain, Decimal):
            plain = int(plain) if plain == plain.to_integral_value() else float(plain)
        out[key] = plain
    return out


def load_seed(path: Path = SEED_FILE) -> list[dict[str, Any]]:
    """The seed command records (with ``ap_id``, and one pre-V3 record without it)."""
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a list of command records")
    return records


def put_command(dynamodb: Any, record: Mapping[str, Any], table: str = COMMAND_TABLE) -> None:
    """Write one command record to the write side."""
    dynamodb.put_item(TableName=table, Item=to_item(record))


def put_commands(
    dynamodb: Any, records: Sequence[Mapping[str, Any]], table: str = COMMAND_TABLE
) -> None:
    """Write command records in BatchWriteItem requests (25 each), retrying what is unprocessed."""
    for start in range(0, len(records), 25):
        pending: dict[str, Any] = {
            table: [{"PutRequest": {"Item": to_item(r)}} for r in records[start : start + 25]]
        }
        for attempt in range(10):
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        if pending:
            raise RuntimeError(f"{table}: items still unprocessed after 10 attempts: {pending}")


def wait_for_sync(
    dynamodb: Any,
    user_id: str,
    created_at: int,
    *,
    expect: Mapping[str, Any] | Callable[[dict[str, Any]], bool] | None = None,
    table: str = READ_TABLE,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    transaction_id: str | None = None,
    watch: FailureWatch | None = None,
    source_key: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Poll the read side until the record keyed (user_id, created_at) is there and matches.

    ``expect`` is either attribute values the record must have, or a predicate; with
    ``transaction_id`` the record must also be that transaction's, since another transaction of
    the user in the same millisecond has the same read key (docs/decisions/0001). On timeout the
    error shows the last version seen (or that there was none) and names such a collision. With a
    ``watch`` and the write side's ``source_key`` (transaction_id, created_at), a record that lands
    in the on-failure queue raises :class:`RecordRejected` at once, with the reason, instead of
    waiting it out.
    """
    if expect is None:
        matches: Callable[[dict[str, Any]], bool] = lambda record: True  # noqa: E731
    elif callable(expect):
        matches = expect
    else:
        wanted = dict(expect)
        matches = lambda record: all(record.get(k) == v for k, v in wanted.items())  # noqa: E731
    if transaction_id is not None:
        base = matches
        matches = lambda record: (  # noqa: E731
            record.get("transaction_id") == transaction_id and base(record)
        )
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    watched_key = to_item(source_key) if source_key is not None else None
    next_watch = time.monotonic() + WATCH_INTERVAL_S
    while True:
        if watch is not None and watched_key is not None and time.monotonic() >= next_watch:
            watch.check(watched_key)
            next_watch = time.monotonic() + WATCH_INTERVAL_S
        item = dynamodb.get_item(
            TableName=table,
            Key=to_item({"user_id": user_id, "created_at": created_at}),
            ConsistentRead=True,
        ).get("Item")
        if item is not None:
            last = from_item(item)
            if matches(last):
                return last
        if time.monotonic() >= deadline:
            seen = (
                f"last seen: {json.dumps(last, sort_keys=True)}"
                if last
                else "no such record was seen"
            )
            raise SyncTimeout(
                f"{table} has no matching record for user_id={user_id!r}, created_at={created_at} "
                f"after {timeout_s:g} s ({seen}; expected {expect!r})"
                + _collision_hint(last, transaction_id)
            )
        time.sleep(interval_s)


def _collision_hint(last: dict[str, Any] | None, transaction_id: str | None) -> str:
    holder = (last or {}).get("transaction_id")
    if transaction_id is None or holder is None or holder == transaction_id:
        return ""
    return (
        f"; the read key holds transaction {holder!r}, not {transaction_id!r}: a read-key"
        " collision, reported in stream-processor-dlq and /aws/lambda/stream-processor"
        " (docs/decisions/0001-read-key-collisions.md)"
    )


def seed(
    dynamodb: Any,
    records: list[dict[str, Any]] | None = None,
    *,
    timeout_s: float = 20.0,
    after_write: Callable[[], None] | None = None,
) -> int:
    """Write the seed through the write side and wait until every record is on the read side;
    ``after_write()`` runs between the two (e.g. to wait for the stream's mapping)."""
    records = load_seed() if records is None else records
    put_commands(dynamodb, records)
    if after_write is not None:
        after_write()
    for record in records:
        wait_for_sync(
            dynamodb,
            record["user_id"],
            int(record["created_at"]),
            expect={"status": record["status"], "ap_id": record.get("ap_id")}
            if record.get("ap_id")
            else {"status": record["status"]},
            timeout_s=timeout_s,
            transaction_id=record["transaction_id"],
            interval_s=0.05,  # the read side fills within ~0.5 s; fewer polls leave the CPU to it
        )
    return len(records)
