"""The soak's exact check: what was written against the stream, the read side and the queue.

Evidence is read back from the stack, never assumed: every stream record of the run (its
sequence number, event and keys), every item of the run on the read side, every on-failure
message whose ``DDBStreamBatchInfo`` range holds records of the run. Each problem found is a line
naming its consequence (records lost, a blocked shard's batch discarded, an older image applied).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from harness.faults.soak_workload import COMMAND_TABLE, READ_TABLE, Write

__all__ = ["Evidence", "StreamEntry", "Verdict", "check", "read_dlq", "read_side", "read_stream"]

#: the API's fields of a read record (NotificationRecord), all compared with the command image
FIELDS = ("transaction_id", "marketing_id", "ap_id", "notification_title", "status", "platform",
          "error_msg")  # fmt: skip
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class StreamEntry:
    """One stream record of ``command-records``."""

    sequence: int
    shard: str
    event: str
    key: tuple[str, int]


@dataclass
class Evidence:
    """What the stack holds after a run."""

    stream: list[StreamEntry]
    read_items: list[dict[str, Any]]
    dlq_ranges: list[tuple[str, int, int]]  # (shard, first, last sequence number)
    regressions: int  # the write-order watch: older images written over newer ones
    resurrected: int = 0  # the watch: older images re-creating an item deleted meanwhile


@dataclass
class Verdict:
    """The check's figures and problems (empty problems: everything matched exactly)."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_stream(dynamodb: Any, streams: Any, run: str) -> list[StreamEntry]:
    """Every stream record of ``command-records`` whose transaction belongs to ``run``."""
    arn = dynamodb.describe_table(TableName=COMMAND_TABLE)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    entries: list[StreamEntry] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in page.get("Records", []):
                keys = record["dynamodb"]["Keys"]
                tx = keys["transaction_id"]["S"]
                if tx.startswith(f"{run}-"):
                    entries.append(StreamEntry(
                        int(record["dynamodb"]["SequenceNumber"]), shard["ShardId"],
                        record["eventName"], (tx, int(keys["created_at"]["N"]))))  # fmt: skip
            if not page.get("Records"):
                break
            iterator = page.get("NextShardIterator")
    return entries


def read_side(dynamodb: Any, run: str) -> list[dict[str, Any]]:
    """Every read-side item of ``run`` (plain values)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "TableName": READ_TABLE,
        "FilterExpression": "begins_with(user_id, :run)",
        "ExpressionAttributeValues": {":run": {"S": f"{run}-"}},
    }
    while True:
        page = dynamodb.scan(**params)
        for raw in page.get("Items", []):
            items.append({k: _deserializer.deserialize(v) for k, v in raw.items()})
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def read_dlq(sqs: Any, queue_url: str) -> list[tuple[str, int, int]]:
    """The sequence-number ranges of every on-failure message in the queue (consumed)."""
    ranges: list[tuple[str, int, int]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        if not messages:
            return ranges
        for message in messages:
            info = json.loads(message["Body"]).get("DDBStreamBatchInfo", {})
            if info:
                ranges.append((str(info["shardId"]), int(info["startSequenceNumber"]),
                               int(info["endSequenceNumber"])))  # fmt: skip
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def check(writes: list[Write], evidence: Evidence) -> Verdict:
    """Compare the evidence with the writes exactly; every mismatch is a problem line."""
    verdict = Verdict()
    problems = verdict.problems
    latest: dict[tuple[str, int], Write] = {}
    for write in writes:
        if write.sent_at is not None:
            latest[write.key] = write
    poison = {k for k, w in latest.items() if w.poison}
    live = {k for k, w in latest.items() if w.image is not None and not w.poison}
    removed = {k for k, w in latest.items() if w.image is None}
    sent = sum(1 for w in writes if w.sent_at is not None)
    stream = evidence.stream
    verdict.counts.update(writes=sent, stream_records=len(stream), keys=len(latest),
                          live=len(live), removed=len(removed), poison=len(poison))  # fmt: skip
    if len(stream) != sent:
        problems.append(f"{sent} writes sent but {len(stream)} stream records of the run")
    last_image: dict[tuple[str, int], int] = {}
    for entry in stream:
        if entry.event in ("INSERT", "MODIFY"):
            last_image[entry.key] = max(entry.sequence, last_image.get(entry.key, 0))
    # -- the on-failure queue: poison records and nothing else -------------------------------
    by_shard: dict[str, list[StreamEntry]] = {}
    for entry in stream:
        by_shard.setdefault(entry.shard, []).append(entry)
    reported: Counter[tuple[str, int]] = Counter()
    messages = 0
    for shard, first, last in evidence.dlq_ranges:
        covered = [e for e in by_shard.get(shard, []) if first <= e.sequence <= last]
        if not covered:
            continue  # another run's message
        messages += 1
        for entry in covered:
            reported[entry.key] += 1
    verdict.counts["dlq_messages"] = messages
    discarded_good = sorted(k for k in reported if k not in poison)
    if discarded_good:
        problems.append(
            f"{len(discarded_good)} good records were discarded to the on-failure queue with a "
            "poison record (its batch was not bisected down to the bad record: a blocked shard "
            f"gave up on good records), e.g. {discarded_good[:3]}"
        )
    missing_poison = sorted(poison - set(reported))
    if missing_poison:
        problems.append(
            f"{len(missing_poison)} poison records are not in the on-failure queue (a failed "
            "record was taken for a success: partial batch responses ignored?), "
            f"e.g. {missing_poison[:3]}"
        )
    twice = sorted(k for k in poison if reported[k] > 1)
    if twice:
        problems.append(f"{len(twice)} poison records reported more than once, e.g. {twice[:3]}")
    # -- the read side: every good record at its latest image, nothing else --------------------
    items = {(str(i["transaction_id"]), int(i["created_at"])): i for i in evidence.read_items}
    duplicates = len(evidence.read_items) - len(items)
    verdict.counts["read_items"] = len(evidence.read_items)
    verdict.counts["duplicates"] = duplicates
    if duplicates:
        problems.append(f"{duplicates} duplicate read records for one command key")
    lost = sorted(live - set(items))
    verdict.counts["lost"] = len(lost)
    if lost:
        problems.append(f"{len(lost)} good records lost: not on the read side, e.g. {lost[:3]}")
    for name, keys in (("removed", removed), ("poison", poison)):
        present = sorted(keys & set(items))
        if present:
            problems.append(f"{len(present)} {name} records are on the read side, e.g. "
                            f"{present[:3]}")  # fmt: skip
    unexpected = sorted(set(items) - set(latest))
    if unexpected:
        problems.append(f"{len(unexpected)} read records match no write, e.g. {unexpected[:3]}")
    stale = []
    for key in sorted(live & set(items)):
        image = latest[key].image
        assert image is not None
        item = items[key]
        wrong = [f for f in (*FIELDS, "user_id") if item.get(f) != image.get(f)]
        expected_sequence = str(last_image.get(key, 0)).zfill(40)
        if wrong or item.get("source_sequence") != expected_sequence:
            stale.append((key, wrong or ["source_sequence"]))
    verdict.counts["stale"] = len(stale)
    if stale:
        problems.append(
            f"{len(stale)} read records differ from their latest command image (a newer image "
            f"was never applied, or an older one was applied last), e.g. {stale[:3]}"
        )
    verdict.counts["regressions"] = evidence.regressions
    verdict.counts["resurrected"] = evidence.resurrected
    if evidence.regressions:
        problems.append(
            f"an older image was written over a newer one {evidence.regressions} times on the "
            "read side (re-applied older image: the stream processor's conditional write is off?)"
        )
    return verdict
