"""Stream poller over an in-memory DynamoDB Streams: shards, shard ends and read errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from esm_fakes import ACCOUNT, REGION, FakeRuntime, wait_until

from harness.streams.batch import PollerConfig, PollerTimings
from harness.streams.poller import CheckpointStore, StreamPoller

FUNCTION = "fn"


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


class FakeStreams:
    """DescribeStream/GetShardIterator/GetRecords over in-memory shards; counts the calls."""

    def __init__(self, shards: dict[str, dict[str, Any]]) -> None:
        self.shards = shards
        self.iterator_calls: list[tuple[str, str]] = []
        self.get_records_calls = 0
        self.fail_next: list[str] = []

    def describe_stream(self, StreamArn: str, **_: Any) -> dict[str, Any]:
        described = []
        for shard_id, shard in self.shards.items():
            entry: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": {}}
            if shard.get("parent"):
                entry["ParentShardId"] = shard["parent"]
            described.append(entry)
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": described}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: str | None = None) -> dict[str, Any]:
        self.iterator_calls.append((ShardId, ShardIteratorType))
        records = self.shards[ShardId]["records"]
        position = {"TRIM_HORIZON": 0, "LATEST": len(records)}.get(ShardIteratorType)
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            position = next(i + 1 for i, r in enumerate(records)
                            if r["dynamodb"]["SequenceNumber"] == SequenceNumber)
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:

        self.get_records_calls += 1
        if self.fail_next:
            code = self.fail_next.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "GetRecords")
        shard_id, position = ShardIterator.split("|")
        shard = self.shards[shard_id]
        start = int(position)
        records = shard["records"][start:start + Limit]
        end = start + len(records)
        answer: dict[str, Any] = {"Records": records}
        if not (shard.get("closed") and end >= len(shard["records"])):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer


def raw_record(seq: int) -> dict[str, Any]:
    return {"eventID": f"e{seq}", "eventName": "INSERT", "eventVersion": "1.0",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": datetime.now(UTC),
                         "Keys": {"pk": {"S": f"k{seq}"}}, "NewImage": {"pk": {"S": f"k{seq}"}},
                         "SequenceNumber": f"{seq:021d}", "SizeBytes": 20,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def run_poller(streams: FakeStreams, runtime: FakeRuntime, until: Callable[[], bool]) -> None:
    config = PollerConfig(uuid="u-1", function_name=FUNCTION,
                          function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
                          event_source_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/x",
                          starting_position="TRIM_HORIZON", batch_size=2)
    stopped = threading.Event()
    poller = StreamPoller(config=lambda: config, streams_client=streams, invoker=runtime,
                          destination=None, checkpoints=CheckpointStore(),  # type: ignore[arg-type]
                          on_ready=lambda: None, on_stopped=stopped.set, on_result=lambda _t: None,
                          timings=PollerTimings(fallback_poll_s=0.05, retry_base_s=0.01,
                                                retry_max_s=0.02, shard_rescan_s=0.1))
    poller.start()
    try:
        wait_until(until)
    finally:
        poller.request_stop()
        poller.join(5)
    assert stopped.is_set()


def test_closed_parent_shard_is_finished_before_its_child_and_iterators_are_reused(runtime):
    streams = FakeStreams({
        "shard-child": {"records": [raw_record(i) for i in (4, 5, 6)], "parent": "shard-parent"},
        "shard-parent": {"records": [raw_record(i) for i in (1, 2, 3)], "closed": True},
    })
    runtime.register(FUNCTION, lambda event: None)
    run_poller(streams, runtime, lambda: sum(map(len, runtime.invocations(FUNCTION))) == 6)
    delivered = [int(seq) for batch in runtime.invocations(FUNCTION) for seq in batch]
    assert delivered == [1, 2, 3, 4, 5, 6]
    calls_after = streams.get_records_calls
    assert calls_after >= 5
    assert streams.iterator_calls == [("shard-parent", "TRIM_HORIZON"),
                                      ("shard-child", "TRIM_HORIZON")]


def test_read_errors_are_retried_and_a_lost_iterator_resumes_after_the_checkpoint(runtime):
    streams = FakeStreams({"shard-1": {"records": [raw_record(i) for i in range(1, 5)]}})
    streams.fail_next = ["ThrottlingException"]

    def handler(event: dict[str, Any]) -> None:
        if event["Records"][0]["dynamodb"]["SequenceNumber"] == raw_record(1)["dynamodb"][
                "SequenceNumber"]:  # after the first batch the iterator expires
            streams.fail_next = ["ExpiredIteratorException"]
            streams.shards["shard-1"]["records"].append(raw_record(5))

    runtime.register(FUNCTION, handler)
    run_poller(streams, runtime, lambda: sum(map(len, runtime.invocations(FUNCTION))) >= 5)
    seen = [int(s) for batch in runtime.invocations(FUNCTION) for s in batch]
    assert seen == [1, 2, 3, 4, 5]
    assert streams.iterator_calls == [("shard-1", "TRIM_HORIZON"),
                                      ("shard-1", "AFTER_SEQUENCE_NUMBER")]
