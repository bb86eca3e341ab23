"""Item 10: complete logs — every request of a sample followed by its id through the gateway access
log, ``/ecs/query-service`` and the query Lambda's log group (START/END/REPORT); the stream
processor logs one line per batch with counts."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from harness.stack.commands import put_commands
from harness.verify.checks.contract import PROBE_BODIES
from harness.verify.model import Evidence, ItemResult, Status, Table, bi, verdict
from harness.verify.target import Options, Target

SAMPLE_SIZE = 200
SERVICE_GROUP = "/ecs/query-service"
QUERY_GROUP = "/aws/lambda/query-lambda"
STREAM_GROUP = "/aws/lambda/stream-processor"
LIFECYCLE = re.compile(r"^(START|END|REPORT) RequestId: (\S+)")


def check_logs(target: Target, options: Options) -> ItemResult:
    """Send the sample, then look for each id in every log it must reach."""
    evidence = Evidence()
    if target.edge_url is None and target.access_log() is None:
        return ItemResult("10", Status.NOT_CHECKED, bi(
            "Not checked here: neither the stage's access log nor its CloudWatch Logs are readable "
            "from this machine.", "此處未檢查：本機無法讀取該環境的存取日誌與 CloudWatch Logs。"), evidence)
    began_ms = int(time.time() * 1000) - 1000
    ids = _send_sample(target.gateway_url)
    if target.local:
        _write_batch(target)
    time.sleep(2.0)  # log delivery: the Lambda runtime ships its lines in batches every 50 ms
    trails: dict[str, dict[str, bool]] = {rid: {} for rid in ids}
    sources: dict[str, Status] = {}

    access = target.access_log()
    if access is not None and access.is_file():
        seen = _ids_in_lines(access.read_text(errors="replace").splitlines(), "xRequestId")
        for rid in ids:
            trails[rid]["gateway access log"] = rid in seen
        sources["gateway access log"] = Status.PASS
    else:
        evidence.excerpts.append("the gateway access log is not readable from here")
        sources["gateway access log"] = Status.NOT_CHECKED

    cloudwatch = _read_groups(target, began_ms, evidence)
    service_lines = cloudwatch.get(SERVICE_GROUP)
    if service_lines is None:
        sources[SERVICE_GROUP] = Status.NOT_CHECKED
    else:
        seen = _ids_in_lines(service_lines, "request_id")
        for rid in ids:
            trails[rid][SERVICE_GROUP] = rid in seen
        sources[SERVICE_GROUP] = Status.PASS
        if not service_lines:
            local = _replica_log_coverage(target, ids)
            evidence.failures.insert(0, f"{SERVICE_GROUP} holds no log events since the sample began: "
                                        "the service logged no request line (its request logging is off, "
                                        f"e.g. LOG_LEVEL above INFO) or its logs are not shipped{local}")
        elif not seen & set(ids):
            evidence.failures.insert(0, f"{SERVICE_GROUP} holds {len(service_lines)} log event(s) since the "
                                        "sample began, none with a request_id of the sample: the service "
                                        "does not log its requests with their ids")
    query_lines = cloudwatch.get(QUERY_GROUP)
    if query_lines is None:
        sources[QUERY_GROUP] = Status.NOT_CHECKED
    else:
        complete = _lambda_trails(query_lines)
        for rid in ids:
            trails[rid][f"{QUERY_GROUP} (+START/END/REPORT)"] = rid in complete
        sources[QUERY_GROUP] = Status.PASS

    incomplete = {rid: [k for k, ok in t.items() if not ok] for rid, t in trails.items()}
    incomplete = {rid: missing for rid, missing in incomplete.items() if missing}
    for rid, missing in list(incomplete.items())[:50]:
        evidence.failures.append(f"request {rid}: not found in {', '.join(missing)}")
    if len(incomplete) > 50:
        evidence.failures.append(f"… and {len(incomplete) - 50} more requests with an incomplete trail")
    rows = []
    for source in sorted({k for t in trails.values() for k in t}):
        found = sum(1 for t in trails.values() if t.get(source))
        rows.append([source, f"{found}/{len(ids)}", f"{found / len(ids):.1%}"])
    evidence.tables.append(Table(bi("Coverage of the sample per log", "各日誌涵蓋率"),
                                 ["log", "found", "coverage"], rows))
    evidence.fact("sample", "抽樣請求數", f"{len(ids)} requests with known X-Request-Id")
    evidence.fact("complete trails", "完整軌跡", f"{len(ids) - len(incomplete)}/{len(ids)}")

    stream_lines = cloudwatch.get(STREAM_GROUP)
    batches, with_counts = _batch_lines(stream_lines or [])
    evidence.fact("stream processor invocations / with a batch line with counts",
                  "串流處理器呼叫次數／含筆數的批次紀錄", f"{batches} / {with_counts}")
    if stream_lines is not None and (batches == 0 or with_counts < batches):
        evidence.failures.append(f"{STREAM_GROUP}: {batches - with_counts} of {batches} invocation(s) log no "
                                 "batch line with counts (e.g. {\"message\": \"batch processed\", \"records\": n})")
    unchecked = [s for s, v in sources.items() if v is Status.NOT_CHECKED]
    if unchecked and not evidence.failures:
        return ItemResult("10", Status.NOT_CHECKED,
                          bi(f"not checked here: {', '.join(unchecked)} cannot be read",
                             f"此處未檢查：無法讀取 {', '.join(unchecked)}"), evidence)
    return verdict(
        not evidence.failures,
        bi(f"All {len(ids)} requests traced through every log (100 %); the stream processor logs "
           "each batch with counts.",
           f"{len(ids)} 個請求皆可在所有日誌追蹤（100 %）；串流處理器每批次皆記錄筆數。"),
        bi(f"{len(incomplete)} of {len(ids)} trails incomplete; {evidence.failures[0] if evidence.failures else ''}",
           f"{len(ids)} 個請求中 {len(incomplete)} 個軌跡不完整；{evidence.failures[0] if evidence.failures else ''}"),
        evidence,
        "10",
    )


def _send_sample(gateway_url: str) -> list[str]:
    ids = []
    routes = list(PROBE_BODIES.items())
    with httpx.Client(base_url=gateway_url, timeout=30.0) as client:
        for n in range(SAMPLE_SIZE):
            path, body = routes[n % len(routes)]
            request_id = f"verify-log-{uuid.uuid4()}"
            client.post(path, json=body, headers={"X-Request-Id": request_id})
            ids.append(request_id)
    return ids


def _write_batch(target: Target) -> None:
    """A few command records, so the stream processor has batches to log."""
    stamp = int(time.time() * 1000)
    put_commands(target.client("dynamodb"), [
        {"transaction_id": f"verify_log_tx_{stamp}_{i}", "created_at": stamp + i, "user_id": f"verify_log_{stamp}",
         "notification_title": "log check", "status": "SENT", "platform": "IOS", "device_token": "t",
         "payload": "{}", "ap_id": "mobile-app-001"} for i in range(3)])


def _read_groups(target: Target, since_ms: int, evidence: Evidence) -> dict[str, list[str] | None]:
    """Log group -> its messages since ``since_ms`` ([] when empty, None when it cannot be read)."""
    out: dict[str, list[str] | None] = {}
    if target.edge_url is None:
        evidence.excerpts.append("CloudWatch Logs of the stage are not reachable from here")
        return dict.fromkeys((SERVICE_GROUP, QUERY_GROUP, STREAM_GROUP))
    logs = target.client("logs")
    for group in (SERVICE_GROUP, QUERY_GROUP, STREAM_GROUP):
        try:
            lines: list[str] = []
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=since_ms):
                lines.extend(str(e["message"]).rstrip("\n") for e in page["events"])
            out[group] = lines
        except (ClientError, BotoCoreError) as exc:
            evidence.failures.append(f"{group}: cannot be read: {exc}")
            out[group] = []
    return out


def _ids_in_lines(lines: list[str], key: str) -> set[str]:
    found = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get(key), str):
            found.add(record[key])
    return found


def _lambda_trails(lines: list[str]) -> set[str]:
    """Request ids whose invocation has its correlation line and START, END and REPORT."""
    lifecycle: dict[str, set[str]] = {}
    correlated: dict[str, str] = {}
    for line in lines:
        match = LIFECYCLE.match(line)
        if match:
            lifecycle.setdefault(match.group(2), set()).add(match.group(1))
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("correlation_id") and record.get("function_request_id"):
            correlated[str(record["correlation_id"])] = str(record["function_request_id"])
    return {rid for rid, invocation in correlated.items()
            if lifecycle.get(invocation, set()) >= {"START", "END", "REPORT"}}


def _batch_lines(lines: list[str]) -> tuple[int, int]:
    """(invocations, invocations with a JSON line mentioning the batch with integer counts)."""
    invocations = 0
    with_counts = 0
    counted = False
    for line in lines:
        match = LIFECYCLE.match(line)
        if match and match.group(1) == "START":
            invocations += 1
            counted = False
        elif match and match.group(1) == "END":
            with_counts += counted
        else:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "batch" in str(record.get("message", "")).lower() and any(
                isinstance(v, int) and not isinstance(v, bool) for k, v in record.items() if k != "timestamp"
            ):
                counted = True
    return invocations, with_counts


def _replica_log_coverage(target: Target, ids: list[str]) -> str:
    if target.log_dir is None:
        return ""
    seen: set[str] = set()
    for path in Path(target.log_dir).glob("replica-*.log"):
        seen |= _ids_in_lines(path.read_text(errors="replace").splitlines(), "request_id")
    found = sum(1 for rid in ids if rid in seen)
    return f"; the replicas' own log files hold {found}/{len(ids)} of the ids"
