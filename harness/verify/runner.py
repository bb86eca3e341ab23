"""Runs the selected acceptance items against a target, one at a time, and collects the results."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable

from harness.verify.checklist import BY_ID, ITEMS
from harness.verify.checks import iam_live
from harness.verify.model import Evidence, ItemResult, Status, bi, not_checked
from harness.verify.target import Options, Target

logger = logging.getLogger("harness.verify")
Check = Callable[[Target, Options], ItemResult]


def registry() -> dict[str, Check]:
    """Item id -> the function that checks it."""
    from harness.verify.checks import (
        availability,
        contract,
        data,
        health,
        iam,
        logs,
        performance,
        security,
    )

    return {
        "1": contract.check_endpoints,
        "2": data.check_query_results,
        "3": data.check_ap_id_sync,
        "4": health.check_health,
        "5": performance.check_response_time,
        "6": availability.check_availability,
        "7": availability.check_autoscaling,
        "8": security.check_vpc_only,
        "9": iam.check_least_privilege,
        "10": logs.check_logs,
    }


def parse_only(text: str | None) -> list[str]:
    """``"1,5,8"`` -> the item ids; ValueError names an unknown one."""
    if not text:
        return [item.id for item in ITEMS]
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in BY_ID]
    if unknown:
        raise ValueError(f"unknown item(s) {', '.join(unknown)}: items are 1 to {len(ITEMS)}")
    return [item.id for item in ITEMS if item.id in wanted]


def run(
    target: Target,
    options: Options,
    ids: Iterable[str],
    done: Callable[[ItemResult], None] = lambda result: None,
    checks: dict[str, Check] | None = None,
) -> list[ItemResult]:
    """Check each item; an item that raises is a FAIL whose evidence is the error."""
    checks = checks if checks is not None else registry()
    # item 9 judges the IAM decisions of the whole run: enforcement on throughout, 9 last
    ids, order = iam_live.item_9_last(ids)
    results: list[ItemResult] = []
    # the endpoint's previous IAM setting comes back however the run ends (Ctrl-C included)
    with iam_live.enforcement_for(target, ids):
        for item_id in ids:
            item = BY_ID[item_id]
            started = time.perf_counter()
            if not target.local and not item.remote_safe:
                result = not_checked(
                    item_id,
                    bi("Not checked here: this item writes data or changes the service, which is "
                       "only done on the local stack.",
                       "此處未檢查：本項目會寫入資料或變更服務，僅在本機堆疊上執行。"),
                )
            else:
                try:
                    result = checks[item_id](target, options)
                except Exception as exc:  # noqa: BLE001 - reported as the item's failure, not swallowed
                    # the traceback's end is the item's evidence; the full one goes to the run's log
                    # file (INFO), not the terminal, which shows one line per item
                    logger.info("item %s raised", item_id, exc_info=True)
                    evidence = Evidence(failures=[f"{type(exc).__name__}: {exc}"])
                    evidence.excerpts.extend(traceback.format_exc().splitlines()[-12:])
                    result = ItemResult(
                        item_id,
                        Status.FAIL,
                        bi(f"The check itself failed: {type(exc).__name__}: {exc}",
                           f"檢查本身失敗：{type(exc).__name__}: {exc}"),
                        evidence,
                    )
            result.duration_s = round(time.perf_counter() - started, 2)
            results.append(result)
            done(result)
    return sorted(results, key=lambda r: order.index(r.id))


def exit_code(results: Iterable[ItemResult]) -> int:
    """0 only when every checked item passed (and at least one was checked)."""
    results = list(results)
    checked = [r for r in results if r.checked]
    return 0 if checked and all(r.status is Status.PASS for r in checked) else 1
