"""Items 2 and 3: query results against an oracle, and the ``ap_id`` field through the stream."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from harness.stack.commands import (
    COMMAND_TABLE,
    READ_TABLE,
    SyncTimeout,
    from_item,
    load_seed,
    put_command,
    to_item,
    wait_for_sync,
)
from harness.verify.checks import dataset
from harness.verify.model import Evidence, ItemResult, Table, bi, verdict
from harness.verify.target import Options, Target


def check_query_results(target: Target, options: Options) -> ItemResult:
    """Write a generated data set through command-records; every query, all pages, equals the oracle."""
    dynamodb = target.client("dynamodb")
    data = dataset.generate(options.seed, per_user=options.records_per_user)
    evidence = Evidence()
    started = time.monotonic()
    dataset.write(dynamodb, data)
    synced, waited, per_user = dataset.wait_synced(dynamodb, data.records, options.sync_timeout_s)
    evidence.fact("records written to command-records", "寫入 command-records 的紀錄", len(data.records))
    evidence.fact("run prefix of the ids", "本次資料 ID 前綴", data.prefix)
    evidence.fact("write + stream sync time", "寫入與串流同步時間", f"{time.monotonic() - started:.1f} s")
    if not synced:
        lagging = {u: f"{s}/{c}" for u, (s, c) in per_user.items() if s != c}
        evidence.failures.append(
            f"the read side did not receive every record within {waited:.0f} s (seen/written per user): {lagging}"
        )
    rows: list[list[str]] = []
    queries = 0
    with httpx.Client(base_url=target.gateway_url, timeout=30.0) as client:
        for kind in ("user", "marketing", "fail"):
            for value in data.ids(kind):
                expected = data.expected(kind, value)
                answer, pages, problems = dataset.read_all(client, kind, value)
                problems += dataset.compare(kind, value, answer, expected)
                queries += 1
                evidence.failures.extend(problems)
                if kind != "fail" or pages > 1 or problems:
                    rows.append([f"/query/{kind}", value, str(len(expected)), str(len(answer)),
                                 str(pages), "ok" if not problems else "FAIL"])
    fail_queries = len(data.ids("fail"))
    evidence.fact("queries compared (all pages)", "比對的查詢（所有分頁）", queries)
    evidence.fact("transactions queried with /query/fail", "以 /query/fail 查詢的交易", fail_queries)
    evidence.tables.append(Table(
        bi("Users and campaigns (every /query/fail answer is compared too)",
           "使用者與活動（每筆 /query/fail 亦已比對）"),
        ["route", "id", "expected", "answered", "pages", "verdict"], rows))
    return verdict(
        not evidence.failures,
        bi(f"{queries} queries over {len(data.records)} generated records answered exactly as the "
           "oracle: newest first, no duplicates, none missing, paging complete, fail only FAILED.",
           f"{len(data.records)} 筆產生資料的 {queries} 個查詢結果與預期完全相同：由新到舊、無重複、無遺漏、"
           "分頁完整、fail 僅含 FAILED。"),
        bi(f"{len(evidence.failures)} difference(s) from the oracle: {_first(evidence)}",
           f"與預期有 {len(evidence.failures)} 處不同：{_first(evidence)}"),
        evidence,
        "2",
    )


def check_ap_id_sync(target: Target, options: Options) -> ItemResult:
    """ap_id inserted, changed, removed, and absent (pre-V3) arrives as it should; latency measured."""
    dynamodb = target.client("dynamodb")
    evidence = Evidence()
    prefix = f"verify{int(time.time() * 1000)}"
    base = int(time.time() * 1000)
    latencies: list[float] = []
    rows: list[list[str]] = []

    def record(name: str, offset: int, ap_id: str | None) -> dict[str, Any]:
        made: dict[str, Any] = {
            "transaction_id": f"{prefix}_tx_{name}", "created_at": base + offset,
            "user_id": f"{prefix}_user", "notification_title": f"ap_id {name}", "status": "SENT",
            "platform": "IOS", "device_token": "token", "payload": "{}",
        }
        if ap_id is not None:
            made["ap_id"] = ap_id
        return made

    def step(what: str, written: dict[str, Any], expect_ap_id: str | None) -> None:
        began = time.monotonic()
        put_command(dynamodb, written)
        try:
            wait_for_sync(
                dynamodb, written["user_id"], written["created_at"],
                expect=lambda r: r.get("ap_id") == expect_ap_id and r.get("notification_title")
                == written["notification_title"],
                timeout_s=options.sync_timeout_s / 4,
            )
            latencies.append((time.monotonic() - began) * 1000)
            rows.append([what, _shown(expect_ap_id), f"{latencies[-1]:.0f} ms", "ok"])
        except SyncTimeout:
            rows.append([what, _shown(expect_ap_id), "-", "FAIL"])
            item = dynamodb.get_item(TableName=READ_TABLE, ConsistentRead=True, Key=to_item(
                {"user_id": written["user_id"], "created_at": written["created_at"]})).get("Item")
            seen = "no record" if item is None else f"ap_id={from_item(item).get('ap_id', '<absent>')!r}"
            evidence.failures.append(
                f"{what}: expected ap_id={expect_ap_id!r} on the read side within "
                f"{options.sync_timeout_s / 4:g} s; it holds {seen} (user_id={written['user_id']}, "
                f"created_at={written['created_at']})")

    inserted = record("a", 1, "mobile-app-001")
    step("INSERT with ap_id", inserted, "mobile-app-001")
    step("INSERT without ap_id (pre-V3)", record("b", 2, None), None)
    step("MODIFY ap_id mobile-app-001 -> web-portal-001",
         {**inserted, "ap_id": "web-portal-001"}, "web-portal-001")
    removed = record("c", 3, "mobile-app-002")
    step("INSERT with ap_id (to be removed)", removed, "mobile-app-002")
    step("MODIFY removing ap_id", {k: v for k, v in removed.items() if k != "ap_id"}, None)
    gone = record("d", 4, "mobile-app-001")
    step("INSERT (to be deleted)", gone, "mobile-app-001")
    dynamodb.delete_item(TableName=COMMAND_TABLE, Key=to_item(
        {"transaction_id": gone["transaction_id"], "created_at": gone["created_at"]}))

    expected = {base + 1: "web-portal-001", base + 2: None, base + 3: None}
    deadline = time.monotonic() + options.sync_timeout_s / 4
    with httpx.Client(base_url=target.gateway_url, timeout=30.0) as client:
        while True:  # the REMOVE travels the stream: wait until the record leaves the answer
            answer, _, problems = dataset.read_all(client, "user", f"{prefix}_user")
            by_time = {r.get("created_at"): r for r in answer}
            if base + 4 not in by_time or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        evidence.failures.extend(problems)
        for created_at, ap_id in expected.items():
            got = by_time.get(created_at)
            if got is None:
                evidence.failures.append(f"API: record created_at={created_at} is missing")
            elif "ap_id" not in got or got["ap_id"] != ap_id:
                evidence.failures.append(
                    f"API: record created_at={created_at} answers ap_id={got.get('ap_id', '<absent>')!r}, "
                    f"expected {ap_id!r}")
        if base + 4 in by_time:
            evidence.failures.append("REMOVE: the deleted command record is still answered by the API")
        rows.append(["REMOVE (DeleteItem)", "-", "-", "FAIL" if base + 4 in by_time else "ok"])
        evidence.failures.extend(_seed_pre_v3(client))

    evidence.tables.append(Table(bi("Each change and its sync latency", "每次變更與同步延遲"),
                                 ["change", "ap_id expected", "sync latency", "verdict"], rows))
    if latencies:
        evidence.fact("sync latency median", "同步延遲中位數", f"{statistics.median(latencies):.0f} ms")
        evidence.fact("sync latency max", "同步延遲最大值", f"{max(latencies):.0f} ms")
    return verdict(
        not evidence.failures,
        bi("ap_id arrives on insert, follows a change and a removal, pre-V3 records answer null; "
           f"median sync latency {statistics.median(latencies) if latencies else 0:.0f} ms.",
           "ap_id 於新增時同步、隨修改與移除更新，V3 之前的紀錄回傳 null；同步延遲中位數 "
           f"{statistics.median(latencies) if latencies else 0:.0f} ms。"),
        bi(f"{len(evidence.failures)} problem(s): {_first(evidence)}",
           f"發現 {len(evidence.failures)} 個問題：{_first(evidence)}"),
        evidence,
        "3",
    )


def _seed_pre_v3(client: httpx.Client) -> list[str]:
    """The seed's pre-V3 record (no ap_id) answers ap_id null, when the seed is loaded."""
    problems = []
    for seeded in load_seed():
        if "ap_id" in seeded:
            continue
        answer, _, _ = dataset.read_all(client, "user", seeded["user_id"])
        found = [r for r in answer if r.get("created_at") == seeded["created_at"]]
        if found and ("ap_id" not in found[0] or found[0]["ap_id"] is not None):
            problems.append(f"seed pre-V3 record {seeded['transaction_id']}: ap_id is "
                            f"{found[0].get('ap_id', '<absent>')!r}, expected null")
    return problems


def _first(evidence: Evidence) -> str:
    return evidence.failures[0] if evidence.failures else "-"


def _shown(ap_id: str | None) -> str:
    """An ap_id as the API writes it (null, not None)."""
    return "null" if ap_id is None else ap_id
