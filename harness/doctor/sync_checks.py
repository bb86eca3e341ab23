"""資料不同步 — data does not sync: the stream, the mapping, the read side, the function, the queue."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status
from harness.doctor.registry import check, finding
from harness.stack.infra import MappingSpec

SAMPLE = 50  # command records compared with the read side
ERROR_LINE = re.compile(
    r'"level":\s*"ERROR"|\[ERROR\]|\tERROR\t|Task timed out|"errorType"|Traceback'
)


def _mapping_spec(ctx: Context) -> MappingSpec:
    return ctx.infra.mappings[0]


def _stream_arn(ctx: Context, table: str) -> str | None:
    description = ctx.client("dynamodb").describe_table(TableName=table)["Table"]
    return description.get("LatestStreamArn") if description.get("StreamSpecification") else None


def _mapping(ctx: Context) -> dict[str, Any] | None:
    spec = _mapping_spec(ctx)
    stream = _stream_arn(ctx, spec.source_table)
    mappings = ctx.client("lambda").list_event_source_mappings(FunctionName=spec.function_name)
    ours = [m for m in mappings["EventSourceMappings"] if m.get("EventSourceArn") == stream]
    return ours[0] if ours else None


@check("sync.stream", "DynamoDB stream on the command table")
def stream(ctx: Context) -> list[Finding]:
    spec = _mapping_spec(ctx)
    title = f"DynamoDB stream of {spec.source_table}"
    table = ctx.client("dynamodb").describe_table(TableName=spec.source_table)["Table"]
    wanted = ctx.infra.table(spec.source_table).stream_view_type or "NEW_AND_OLD_IMAGES"
    stream_spec = table.get("StreamSpecification") or {}
    enable = (
        f"aws dynamodb update-table --table-name {spec.source_table} --stream-specification "
        f"StreamEnabled=true,StreamViewType={wanted}, then map the new stream ARN to {spec.function_name}"
    )
    if not stream_spec.get("StreamEnabled"):
        return finding("sync.stream", title, Status.FAIL, ["the stream is disabled"], enable)
    view = stream_spec.get("StreamViewType")
    if view != wanted:
        return finding(
            "sync.stream", title, Status.FAIL, [f"view type {view}, infra/ says {wanted}"], enable
        )
    arn = table["LatestStreamArn"]
    status = ctx.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"][
        "StreamStatus"
    ]
    evidence = [f"{arn}: {status}, {view}"]
    if status != "ENABLED":
        return finding("sync.stream", title, Status.FAIL, evidence, enable)
    return finding("sync.stream", title, Status.PASS, evidence)


@check("sync.mapping", "Event source mapping from the stream to the stream processor")
def mapping(ctx: Context) -> list[Finding]:
    spec = _mapping_spec(ctx)
    title = f"event source mapping {spec.source_table} stream -> {spec.function_name}"
    found = _mapping(ctx)
    if found is None:
        return finding(
            "sync.mapping",
            title,
            Status.FAIL,
            [f"no mapping reads the latest stream of {spec.source_table}"],
            f"create it: aws lambda create-event-source-mapping --function-name {spec.function_name} "
            "--event-source-arn <LatestStreamArn> --starting-position TRIM_HORIZON",
        )
    state, result = found.get("State"), str(found.get("LastProcessingResult", ""))
    evidence = [
        f"UUID {found['UUID']}: {state}, BatchSize {found.get('BatchSize')}, "
        f"LastProcessingResult {result or '(none)'}",
    ]
    if found.get("StateTransitionReason"):
        evidence.append(f"StateTransitionReason: {found['StateTransitionReason']}")
    if state != "Enabled":
        return finding(
            "sync.mapping",
            title,
            Status.FAIL,
            evidence,
            f"enable it: aws lambda update-event-source-mapping --uuid {found['UUID']} --enabled",
        )
    if result.startswith("PROBLEM"):
        return finding(
            "sync.mapping",
            title,
            Status.FAIL,
            evidence,
            f"the function cannot be invoked: look at {spec.function_name}'s configuration and role",
        )
    return finding("sync.mapping", title, Status.PASS, evidence)


def _missing(ctx: Context, records: list[dict[str, Any]], read_table: str) -> list[dict[str, Any]]:
    dynamodb = ctx.client("dynamodb")
    key_schema = dynamodb.describe_table(TableName=read_table)["Table"]["KeySchema"]
    range_key = next((k["AttributeName"] for k in key_schema if k["KeyType"] == "RANGE"), None)
    missing = []
    for record in records:
        user, created, tx = (
            record["user_id"]["S"],
            record["created_at"]["N"],
            record["transaction_id"]["S"],
        )
        if range_key == "created_at":
            condition, values = (
                "user_id = :u AND created_at = :c",
                {":u": {"S": user}, ":c": {"N": created}},
            )
        else:
            condition, values = "user_id = :u", {":u": {"S": user}}
        found = False
        for page in dynamodb.get_paginator("query").paginate(
            TableName=read_table,
            KeyConditionExpression=condition,
            FilterExpression="transaction_id = :t",
            ExpressionAttributeValues={**values, ":t": {"S": tx}},
            ProjectionExpression="transaction_id",
        ):
            if page["Items"]:
                found = True
                break
        if not found:
            missing.append(record)
    return missing


@check("sync.read_side", "Command records have reached the read side")
def read_side(ctx: Context) -> list[Finding]:
    spec = _mapping_spec(ctx)
    function = next(f for f in ctx.infra.functions if f.name == spec.function_name)
    read_table = function.environment.get("NOTIFICATION_TABLE_NAME", "notification-records")
    title = f"{spec.source_table} -> {read_table}"
    scan = ctx.client("dynamodb").scan(
        TableName=spec.source_table,
        Limit=SAMPLE,
        ProjectionExpression="user_id, created_at, transaction_id",
    )
    records = [r for r in scan["Items"] if {"user_id", "created_at", "transaction_id"} <= r.keys()]
    if not records:
        return finding("sync.read_side", title, Status.PASS, [f"{spec.source_table} is empty"])
    missing = _missing(ctx, records, read_table)
    if missing:  # records in flight arrive within a poll or two: ask once more
        time.sleep(2.0)
        missing = _missing(ctx, missing, read_table)
    sampled = f"{len(records)} command records sampled"
    if not missing:
        return finding(
            "sync.read_side", title, Status.PASS, [f"{sampled}; every one is on the read side"]
        )
    evidence = [f"{sampled}; {len(missing)} not on the read side:"] + [
        f"transaction {r['transaction_id']['S']} (user {r['user_id']['S']}, created_at {r['created_at']['N']})"
        for r in missing[:5]
    ]
    return finding(
        "sync.read_side",
        title,
        Status.FAIL,
        evidence,
        f"look for these transaction ids in /aws/lambda/{spec.function_name} and in the on-failure queue (sync.dlq)",
    )


@check("sync.errors", "Stream processor errors and throttles")
def errors(ctx: Context) -> list[Finding]:
    spec = _mapping_spec(ctx)
    group = f"/aws/lambda/{spec.function_name}"
    title = f"{spec.function_name} invocations in the last {ctx.window_s / 60:.0f} min"
    starts, bad = 0, []
    try:
        pages = (
            ctx.client("logs")
            .get_paginator("filter_log_events")
            .paginate(
                logGroupName=group, startTime=ctx.since_ms, PaginationConfig={"MaxItems": 20000}
            )
        )
        for page in pages:
            for event in page["events"]:
                message = event["message"]
                starts += message.startswith("START RequestId")
                if ERROR_LINE.search(message):
                    bad.append(message.strip())
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return finding(
            "sync.errors",
            title,
            Status.FAIL,
            [f"log group {group} does not exist"],
            "the function has never logged: is it deployed, and may its role write logs?",
        )
    evidence = [f"{starts} invocations, {len(bad)} error lines in {group}"]
    evidence += _lambda_metrics(ctx, spec.function_name)
    if bad:
        evidence += [f"  {line[:200]}" for line in bad[:3]]
        return finding(
            "sync.errors",
            title,
            Status.FAIL,
            evidence,
            f"read the errors: aws logs filter-log-events --log-group-name {group} --filter-pattern ERROR",
        )
    return finding("sync.errors", title, Status.PASS, evidence)


def _lambda_metrics(ctx: Context, function: str) -> list[str]:
    """AWS/Lambda Errors and Throttles over the window, where the account publishes them."""
    found = []
    now = datetime.now(UTC)
    for name in ("Errors", "Throttles"):
        points = ctx.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=name,
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=datetime.fromtimestamp(ctx.since_ms / 1000, UTC),
            EndTime=now,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        if points:
            found.append(f"AWS/Lambda {name}: {sum(p['Sum'] for p in points):.0f}")
    return found


@check("sync.dlq", "On-failure queue of the mapping")
def dlq(ctx: Context) -> list[Finding]:
    spec = _mapping_spec(ctx)
    found = _mapping(ctx)
    destination = (
        ((found or {}).get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
    )
    queue = destination.rsplit(":", 1)[-1] if destination else spec.on_failure_queue
    title = f"on-failure queue {queue}"
    if not queue:
        return finding(
            "sync.dlq",
            "on-failure queue",
            Status.WARN,
            ["the mapping has no on-failure destination"],
            "discarded batches are lost without one: set DestinationConfig.OnFailure",
        )
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    depth = sum(int(v) for v in attributes.values())
    if depth == 0:
        return finding("sync.dlq", title, Status.PASS, ["empty"])
    evidence = [f"{depth} discarded batch(es)"]
    peeked = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["SentTimestamp"]
    ).get("Messages", [])
    step = (
        "read the records of that range from the stream, fix the data or the function, "
        "write them again, then purge the queue"
    )
    if peeked:
        oldest = min(peeked, key=lambda m: int(m.get("Attributes", {}).get("SentTimestamp", "0")))
        evidence.append(_describe_discarded(oldest))
        info = _batch_info(oldest)
        if info:
            step = (
                "read the records: aws dynamodbstreams get-shard-iterator "
                f"--stream-arn {info.get('streamArn')} --shard-id {info.get('shardId')} "
                "--shard-iterator-type AT_SEQUENCE_NUMBER "
                f"--sequence-number {info.get('startSequenceNumber')}, then get-records; "
                "fix, write again, purge the queue"
            )
    return finding("sync.dlq", title, Status.FAIL, evidence, step)


def _batch_info(message: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(message["Body"])
    except (KeyError, json.JSONDecodeError):
        return {}
    info = body.get("DDBStreamBatchInfo") if isinstance(body, dict) else None
    return info if isinstance(info, dict) else {}


def _describe_discarded(message: dict[str, Any]) -> str:
    sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
    when = datetime.fromtimestamp(sent / 1000, UTC).isoformat(timespec="seconds") if sent else "?"
    info = _batch_info(message)
    if not info:
        return f"oldest message (sent {when}) is not a DynamoDB stream failure record: {message.get('Body', '')[:200]}"
    try:
        condition = json.loads(message["Body"])["requestContext"]["condition"]
    except (KeyError, TypeError, json.JSONDecodeError):
        condition = "?"
    return (
        f"oldest (sent {when}): {condition}, shard {info.get('shardId')}, sequence "
        f"{info.get('startSequenceNumber')}..{info.get('endSequenceNumber')} ({info.get('batchSize')} records)"
    )


@check("sync.collisions", "Read-key collisions (two transactions, one user, one millisecond)")
def collisions(ctx: Context) -> list[Finding]:
    from harness.readside.collisions import read_collisions

    spec = _mapping_spec(ctx)
    title = f"read-key collisions in the last {ctx.window_s / 60:.0f} min"
    report = read_collisions(
        ctx.client("logs"),
        ctx.client("sqs"),
        since_ms=ctx.since_ms,
        log_group=f"/aws/lambda/{spec.function_name}",
        queue_name=spec.on_failure_queue or "",
    )
    if not report.lines:
        return finding("sync.collisions", title, Status.PASS, ["none reported"])
    evidence = [
        f"{len(report.transactions)} transaction(s) not applied: another holds their read key"
    ]
    evidence += [
        f"{line.transaction_id} on ({line.user_id}, {line.created_at}) held by "
        f"{line.holder_transaction_id}; in the on-failure queue: {line.in_dlq}"
        for line in report.lines[:5]
    ]
    return finding(
        "sync.collisions",
        title,
        Status.FAIL,
        evidence,
        "see docs/decisions/0001-read-key-collisions.md: change the created_at of one of the "
        "transactions and write it again, or move to the sort-key option",
    )
