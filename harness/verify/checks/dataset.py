"""The generated data set of item 2, its oracle, and the API's answers read page by page."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from harness.stack.commands import READ_TABLE, put_commands, to_item

FIELDS = (
    "user_id", "created_at", "transaction_id", "marketing_id", "ap_id",
    "notification_title", "status", "platform", "error_msg",
)
AP_IDS = ("mobile-app-001", "web-portal-001", "mobile-app-002")
QUERY_KEYS = {"user": "user_id", "marketing": "marketing_id", "fail": "transaction_id"}


@dataclass(frozen=True)
class DataSet:
    """Command records written for one run (ids carry the run's prefix)."""

    prefix: str
    records: list[dict[str, Any]]

    def ids(self, kind: str) -> list[str]:
        """Every id that kind of query can ask for in this data set."""
        key = QUERY_KEYS[kind]
        return sorted({str(r[key]) for r in self.records if r.get(key) is not None})

    def expected(self, kind: str, value: str) -> list[dict[str, Any]]:
        """The oracle: what the API must answer for one query (all pages), newest first."""
        key = QUERY_KEYS[kind]
        chosen = [
            r for r in self.records
            if r.get(key) == value and (kind != "fail" or r["status"] == "FAILED")
        ]
        return [as_api(r) for r in sorted(chosen, key=lambda r: -int(r["created_at"]))]


def as_api(record: dict[str, Any]) -> dict[str, Any]:
    """A command record as the API returns it: every field present, null where absent."""
    return {name: record.get(name) for name in FIELDS}


def generate(seed: int, users: int = 4, per_user: int = 70, campaigns: int = 3) -> DataSet:
    """Users with more records than a page, campaigns across users, transactions of 1-3 records
    with mixed statuses, ``ap_id`` on most records (none on about one in ten, as before V3)."""
    rng = random.Random(seed)
    prefix = f"verify{int(time.time())}{rng.randrange(10**6):06d}"
    created = int(time.time() * 1000) - 10**8
    records: list[dict[str, Any]] = []
    for u in range(users):
        user = f"{prefix}_user_{u}"
        made = 0
        while made < per_user:
            transaction = f"{prefix}_tx_{u}_{made}"
            for _ in range(min(rng.randint(1, 3), per_user - made)):
                created += rng.randint(1, 5000)  # unique across the data set: no ties in any order
                status = rng.choice(("SENT", "DELIVERED", "FAILED"))
                record: dict[str, Any] = {
                    "transaction_id": transaction,
                    "created_at": created,
                    "user_id": user,
                    "notification_title": f"notice {made}",
                    "status": status,
                    "platform": rng.choice(("IOS", "ANDROID", "WEBPUSH")),
                    "device_token": f"token-{u}-{made}",
                    "payload": '{"body": "verify"}',
                }
                if rng.random() < 0.75:
                    record["marketing_id"] = f"{prefix}_campaign_{rng.randrange(campaigns)}"
                if rng.random() < 0.9:
                    record["ap_id"] = rng.choice(AP_IDS)
                if status == "FAILED":
                    record["error_msg"] = rng.choice(("InvalidToken", "Unregistered", "Timeout"))
                records.append(record)
                made += 1
    return DataSet(prefix, records)


def write(dynamodb: Any, data: DataSet) -> None:
    """Write the data set to command-records (the real stream path)."""
    put_commands(dynamodb, data.records)


def wait_synced(
    dynamodb: Any, records: Iterable[dict[str, Any]], timeout_s: float
) -> tuple[bool, float, dict[str, tuple[int, int]]]:
    """Wait until the read side holds as many records per user as were written.

    Returns (all there, seconds waited, user -> (seen, written)).
    """
    wanted: dict[str, int] = {}
    for record in records:
        wanted[record["user_id"]] = wanted.get(record["user_id"], 0) + 1
    started = time.monotonic()
    seen: dict[str, int] = {}
    while True:
        for user, count in wanted.items():
            if seen.get(user) != count:
                seen[user] = _count(dynamodb, user)
        if all(seen[u] == c for u, c in wanted.items()):
            return True, time.monotonic() - started, {u: (seen[u], c) for u, c in wanted.items()}
        if time.monotonic() - started > timeout_s:
            return False, time.monotonic() - started, {u: (seen[u], c) for u, c in wanted.items()}
        time.sleep(0.2)


def _count(dynamodb: Any, user: str) -> int:
    total, start = 0, None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": READ_TABLE,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": to_item({"u": user})["u"]},
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = dynamodb.query(**kwargs)
        total += int(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def read_all(
    client: httpx.Client, kind: str, value: str, limit: int | None = None, max_pages: int = 200
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Every page of one query through the gateway: (records, pages, problems)."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    token: str | None = None
    pages = 0
    while pages < max_pages:
        body: dict[str, Any] = {QUERY_KEYS[kind]: value}
        if limit is not None:
            body["limit"] = limit
        if token is not None:
            body["next_token"] = token
        response = client.post(f"/query/{kind}", json=body)
        pages += 1
        if response.status_code != 200:
            problems.append(f"/query/{kind} {value} page {pages}: {response.status_code} {response.text[:200]}")
            break
        page = response.json()
        if page.get("count") != len(page.get("records", [])):
            problems.append(f"/query/{kind} {value} page {pages}: count {page.get('count')} "
                            f"!= {len(page.get('records', []))} records")
        records.extend(page.get("records", []))
        token = page.get("next_token")
        if not token:
            return records, pages, problems
    problems.append(f"/query/{kind} {value}: still a next_token after {max_pages} pages")
    return records, pages, problems


def compare(kind: str, value: str, answer: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """What differs between the API's answer (all pages) and the oracle, one line per problem."""
    problems = []
    where = f"/query/{kind} {value}"
    keys = [(r.get("user_id"), r.get("created_at")) for r in answer]
    duplicates = len(keys) - len(set(keys))
    if duplicates:
        problems.append(f"{where}: {duplicates} duplicate record(s)")
    wanted = {(r["user_id"], r["created_at"]): r for r in expected}
    got = {(r.get("user_id"), r.get("created_at")): r for r in answer}
    missing = [k for k in wanted if k not in got]
    extra = [k for k in got if k not in wanted]
    if missing:
        problems.append(f"{where}: {len(missing)} missing, e.g. user_id={missing[0][0]} created_at={missing[0][1]}")
    if extra:
        problems.append(f"{where}: {len(extra)} unexpected, e.g. user_id={extra[0][0]} created_at={extra[0][1]}")
    if kind == "fail":
        not_failed = [r for r in answer if r.get("status") != "FAILED"]
        if not_failed:
            problems.append(f"{where}: {len(not_failed)} record(s) not FAILED")
    else:
        order = [int(r.get("created_at") or 0) for r in answer]
        if order != sorted(order, reverse=True):
            problems.append(f"{where}: records are not newest first")
    for key, record in got.items():
        if key in wanted and as_api(record) != wanted[key]:
            diff = {f: (record.get(f), wanted[key][f]) for f in FIELDS if record.get(f) != wanted[key][f]}
            problems.append(f"{where}: user_id={key[0]} created_at={key[1]} differs (got, expected): {diff}")
            break
    return problems
