"""Stream poller over an in-memory DynamoDB Streams: shards, shard ends and read errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from esm_fakes import ACCOUNT, REGION, FakeRuntime, FakeStreams, raw_record, wait_until

from harness.streams.batch import PollerConfig, PollerTimings
from harness.streams.poller import CheckpointStore, StreamPoller

FUNCTION = "fn"


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


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
