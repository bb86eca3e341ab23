"""Stream poller against moto's DynamoDB Streams: delivery, retries, bisect, partial batches."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from esm_fakes import (
    ACCOUNT,
    REGION,
    FakeRuntime,
    FunctionCrashed,
    TooManyRequests,
    clients,
    copy_handler,
    create_queue,
    create_source_table,
    create_target_table,
    drain_queue,
    put,
    scan_keys,
    wait_until,
)

from harness.streams.batch import PollerTimings
from harness.streams.mappings import EventSourceMappings

FAST = PollerTimings(fallback_poll_s=0.2, retry_base_s=0.01, retry_max_s=0.05, shard_rescan_s=5)
FUNCTION = "fn"


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict[str, Any]:
    return clients(moto_url)


class Clock:
    """A settable clock for MaximumRecordAgeInSeconds (the real time plus an offset)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def mappings(moto_url: str, runtime: FakeRuntime, clock: Clock) -> Iterator[EventSourceMappings]:
    before = set(threading.enumerate())
    esm = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                              runtime=runtime, clock=clock, timings=FAST)
    esm.start()
    yield esm
    esm.stop()
    leftover = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("esm-")]
    assert leftover == []


@pytest.fixture
def names() -> Callable[[str], str]:
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


def create(esm: EventSourceMappings, stream_arn: str, **settings: Any) -> str:
    request = {"FunctionName": FUNCTION, "EventSourceArn": stream_arn,
               "StartingPosition": "TRIM_HORIZON"} | settings
    status, body = esm.handle("POST", "/2015-03-31/event-source-mappings", {},
                              json.dumps(request).encode())
    assert status == 202, body
    mapping_id = str(body["UUID"])
    if request.get("Enabled", True):
        wait_until(lambda: esm.get_event_source_mapping(mapping_id)["State"] == "Enabled",
                   what="state Enabled")
    return mapping_id


def write(aws: dict[str, Any], esm: EventSourceMappings, table: str, keys: list[str],
          **attributes: str) -> None:
    for key in keys:
        put(aws["dynamodb"], table, key, **attributes)
        esm.notify_write(table)


def test_mapping_copy_table_delivers_every_record_once_in_order(aws, mappings, runtime, names):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    runtime.register(FUNCTION, copy_handler(aws["dynamodb"], target))
    create(mappings, stream_arn, BatchSize=7)
    keys = [f"k{i:03d}" for i in range(40)]
    write(aws, mappings, source, keys, v="1")
    aws["dynamodb"].delete_item(TableName=source, Key={"pk": {"S": "k000"}})
    mappings.notify_write(source)
    wait_until(lambda: scan_keys(aws["dynamodb"], target) == set(keys) - {"k000"}, what="copy")
    delivered = [seq for batch in runtime.invocations(FUNCTION) for seq in batch]
    assert len(delivered) == 41 and len(set(delivered)) == 41
    assert [int(s) for s in delivered] == sorted(int(s) for s in delivered)
    assert max(len(batch) for batch in runtime.invocations(FUNCTION)) <= 7


def test_event_records_have_the_aws_shape(aws, mappings, runtime, names):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    events: list[dict[str, Any]] = []
    runtime.register(FUNCTION, events.append)
    create(mappings, stream_arn)
    write(aws, mappings, source, ["a"], v="1")
    write(aws, mappings, source, ["a"], v="2")
    wait_until(lambda: sum(len(e["Records"]) for e in events) == 2)
    first, second = [r for e in events for r in e["Records"]]
    assert list(second) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion",
                            "dynamodb", "eventSourceARN"]
    assert (second["eventName"], second["eventVersion"], second["eventSource"]) == (
        "MODIFY", "1.1", "aws:dynamodb")
    assert second["awsRegion"] == REGION and second["eventSourceARN"] == stream_arn
    data = second["dynamodb"]
    assert list(data) == ["ApproximateCreationDateTime", "Keys", "NewImage", "OldImage",
                          "SequenceNumber", "SizeBytes", "StreamViewType"]
    assert data["Keys"] == {"pk": {"S": "a"}}
    assert data["NewImage"]["v"] == {"S": "2"} and data["OldImage"]["v"] == {"S": "1"}
    assert abs(data["ApproximateCreationDateTime"] - time.time()) < 60
    assert isinstance(data["SizeBytes"], int) and data["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert "OldImage" not in first["dynamodb"] and first["eventName"] == "INSERT"


def poison_handler(dynamodb: Any, target: str) -> Callable[[dict[str, Any]], None]:
    copy = copy_handler(dynamodb, target)

    def handler(event: dict[str, Any]) -> None:
        for record in event["Records"]:
            if record["dynamodb"].get("NewImage", {}).get("v", {}).get("S") == "poison":
                raise ValueError("poison record")
        copy(event)

    return handler


@pytest.mark.parametrize("bisect", [True, False])
def test_poison_record_bisect_decides_what_lands_and_what_is_discarded(
        aws, mappings, runtime, names, bisect):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    queue_url, queue_arn = create_queue(aws["sqs"], names("dlq"))
    keys = [f"k{i}" for i in range(10)]
    for key in keys:  # written before the mapping: one batch of 10, deterministic
        put(aws["dynamodb"], source, key, v="poison" if key == "k6" else "ok")
    runtime.register(FUNCTION, poison_handler(aws["dynamodb"], target))
    create(mappings, stream_arn, BatchSize=10, BisectBatchOnFunctionError=bisect,
           MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    messages: list[dict[str, Any]] = []
    wait_until(lambda: messages.extend(drain_queue(aws["sqs"], queue_url)) or messages,
               what="on-failure record")
    info = messages[0]["DDBStreamBatchInfo"]
    poison_seq = runtime.invocations(FUNCTION)[0][6]
    if bisect:  # the poison record alone is discarded; the other nine land
        wait_until(lambda: scan_keys(aws["dynamodb"], target) == set(keys) - {"k6"})
        assert (info["batchSize"], info["startSequenceNumber"]) == (1, poison_seq)
        assert info["endSequenceNumber"] == poison_seq
    else:  # the whole batch is retried, then discarded: nothing lands
        assert scan_keys(aws["dynamodb"], target) == set()
        assert info["batchSize"] == 10
        assert messages[0]["requestContext"]["approximateInvokeCount"] == 3
    assert messages[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert len(messages) == 1


def test_on_failure_record_has_the_aws_shape_without_data(aws, mappings, runtime, names):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    queue_url, queue_arn = create_queue(aws["sqs"], names("dlq"))
    runtime.register(FUNCTION, poison_handler(aws["dynamodb"], "unused"))
    put(aws["dynamodb"], source, "p", v="poison")
    create(mappings, stream_arn, MaximumRetryAttempts=1,
           DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    messages = wait_until(lambda: list(drain_queue(aws["sqs"], queue_url)))
    message = messages[0]
    assert set(message) == {"requestContext", "responseContext", "version", "timestamp",
                            "DDBStreamBatchInfo"}
    assert set(message["requestContext"]) == {"requestId", "functionArn", "condition",
                                              "approximateInvokeCount"}
    assert message["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}")
    assert message["requestContext"]["approximateInvokeCount"] == 2
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                          "functionError": "Unhandled"}
    assert message["version"] == "1.0" and message["timestamp"].endswith("Z")
    info = message["DDBStreamBatchInfo"]
    assert set(info) == {"shardId", "startSequenceNumber", "endSequenceNumber",
                         "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                         "batchSize", "streamArn"}
    assert info["streamArn"] == stream_arn and info["batchSize"] == 1
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert "poison" not in str(message)


def test_poison_record_without_bisect_or_retry_limit_blocks_the_shard(
        aws, mappings, runtime, names):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    runtime.register(FUNCTION, poison_handler(aws["dynamodb"], target))
    put(aws["dynamodb"], source, "a", v="ok")
    put(aws["dynamodb"], source, "b", v="poison")
    mapping_id = create(mappings, stream_arn, BatchSize=2)
    write(aws, mappings, source, ["c", "d"], v="ok")
    wait_until(lambda: len(runtime.invocations(FUNCTION)) >= 8, what="retries")
    assert scan_keys(aws["dynamodb"], target) == set()
    assert all(batch == runtime.invocations(FUNCTION)[0]
               for batch in runtime.invocations(FUNCTION))
    assert mappings.get_event_source_mapping(mapping_id)["LastProcessingResult"] == (
        "PROBLEM: Function call failed")


def flaky_handler(attempts: dict[str, int], mode: str) -> Callable[[dict[str, Any]], Any]:
    """Fails the record with v=flaky on its first sight: reports it, or raises."""

    def handler(event: dict[str, Any]) -> Any:
        failures = []
        for record in event["Records"]:
            seq = record["dynamodb"]["SequenceNumber"]
            attempts[seq] = attempts.get(seq, 0) + 1
            if record["dynamodb"]["NewImage"]["v"]["S"] == "flaky" and attempts[seq] == 1:
                failures.append({"itemIdentifier": seq})
        if failures and mode == "raise":
            raise RuntimeError("flaky record")
        if mode == "bad-shape" and failures:
            return {"batchItemFailures": [{"itemIdentifier": ""}]}
        return {"batchItemFailures": failures}

    return handler


@pytest.mark.parametrize(
    ("mode", "report", "first_half_seen", "flaky_seen"),
    [
        ("report", True, 1, 2),      # lowest failed sequence number becomes the checkpoint
        ("report", False, 1, 1),     # response ignored: the failure is lost to the function
        ("raise", False, 2, 2),      # function error: the whole batch is retried
        ("bad-shape", True, 2, 2),   # empty itemIdentifier: the whole batch failed
    ],
)
def test_partial_batch_response_retries_from_the_lowest_failed_record(
        aws, mappings, runtime, names, mode, report, first_half_seen, flaky_seen):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    for i in range(6):
        put(aws["dynamodb"], source, f"k{i}", v="flaky" if i == 3 else "ok")
    attempts: dict[str, int] = {}
    runtime.register(FUNCTION, flaky_handler(attempts, mode))
    create(mappings, stream_arn, BatchSize=10,
           FunctionResponseTypes=["ReportBatchItemFailures"] if report else [])
    wait_until(lambda: len(attempts) == 6)
    seqs = runtime.invocations(FUNCTION)[0]
    wait_until(lambda: attempts[seqs[-1]] >= flaky_seen)
    time.sleep(0.3)  # let any (wrong) further retry show up
    assert [attempts[s] for s in seqs[:3]] == [first_half_seen] * 3
    assert [attempts[s] for s in seqs[3:]] == [flaky_seen] * 3


@pytest.mark.parametrize(("bisect", "discarded"), [(True, 1), (False, 7)])
def test_partial_batch_response_with_bisect_splits_at_the_reported_record(
        aws, mappings, runtime, names, bisect, discarded):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    queue_url, queue_arn = create_queue(aws["sqs"], names("dlq"))
    for i in range(10):
        put(aws["dynamodb"], source, f"k{i}", v="poison" if i == 3 else "ok")

    def handler(event: dict[str, Any]) -> Any:
        return {"batchItemFailures": [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in event["Records"]
            if r["dynamodb"]["NewImage"]["v"]["S"] == "poison"]}

    runtime.register(FUNCTION, handler)
    create(mappings, stream_arn, BatchSize=10, MaximumRetryAttempts=1,
           BisectBatchOnFunctionError=bisect, FunctionResponseTypes=["ReportBatchItemFailures"],
           DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    messages = wait_until(lambda: list(drain_queue(aws["sqs"], queue_url)))
    info = messages[0]["DDBStreamBatchInfo"]
    assert info["batchSize"] == discarded
    assert info["startSequenceNumber"] == runtime.invocations(FUNCTION)[0][3]


def test_retries_exhausted_goes_to_destination_after_retry_limit(aws, mappings, runtime, names):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    queue_url, queue_arn = create_queue(aws["sqs"], names("dlq"))
    runtime.register(FUNCTION, poison_handler(aws["dynamodb"], "unused"))
    put(aws["dynamodb"], source, "p", v="poison")
    create(mappings, stream_arn, MaximumRetryAttempts=3,
           DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    messages = wait_until(lambda: list(drain_queue(aws["sqs"], queue_url)))
    assert messages[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert messages[0]["requestContext"]["approximateInvokeCount"] == 4
    assert len(runtime.invocations(FUNCTION)) == 4


def test_record_age_exceeded_goes_to_destination_when_records_grow_old(
        aws, mappings, runtime, names, clock):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    queue_url, queue_arn = create_queue(aws["sqs"], names("dlq"))
    runtime.register(FUNCTION, poison_handler(aws["dynamodb"], "unused"))
    put(aws["dynamodb"], source, "p", v="poison")
    create(mappings, stream_arn, MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=60,
           DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    wait_until(lambda: len(runtime.invocations(FUNCTION)) >= 3)
    assert list(drain_queue(aws["sqs"], queue_url)) == []
    clock.offset = 61.0
    messages = wait_until(lambda: list(drain_queue(aws["sqs"], queue_url)))
    assert messages[0]["requestContext"]["condition"] == "RecordAgeExceeded"
    calls = len(runtime.invocations(FUNCTION))
    time.sleep(0.2)
    assert len(runtime.invocations(FUNCTION)) == calls


def test_disable_stops_delivery_and_enable_resumes_from_the_checkpoint(
        aws, mappings, runtime, names):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    runtime.register(FUNCTION, copy_handler(aws["dynamodb"], target))
    mapping_id = create(mappings, stream_arn)
    write(aws, mappings, source, ["a", "b"], v="1")
    wait_until(lambda: scan_keys(aws["dynamodb"], target) == {"a", "b"})
    status, body = mappings.handle("PUT", f"/2015-03-31/event-source-mappings/{mapping_id}", {},
                                   b'{"Enabled": false}')
    assert (status, body["State"]) == (202, "Disabling")
    wait_until(lambda: mappings.get_event_source_mapping(mapping_id)["State"] == "Disabled")
    write(aws, mappings, source, ["c", "d"], v="1")
    time.sleep(0.5)  # several fallback polls: a disabled mapping must not deliver
    assert scan_keys(aws["dynamodb"], target) == {"a", "b"}
    status, body = mappings.handle("PUT", f"/2015-03-31/event-source-mappings/{mapping_id}", {},
                                   b'{"Enabled": true}')
    assert (status, body["State"]) == (202, "Enabling")
    wait_until(lambda: scan_keys(aws["dynamodb"], target) == {"a", "b", "c", "d"})
    delivered = [seq for batch in runtime.invocations(FUNCTION) for seq in batch]
    assert len(delivered) == len(set(delivered)) == 4


@pytest.mark.parametrize(("position", "expected"), [("TRIM_HORIZON", {"old", "new"}),
                                                    ("LATEST", {"new"})])
def test_starting_position_decides_whether_earlier_records_are_delivered(
        aws, mappings, runtime, names, position, expected):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    runtime.register(FUNCTION, copy_handler(aws["dynamodb"], target))
    put(aws["dynamodb"], source, "old", v="1")
    create(mappings, stream_arn, StartingPosition=position)
    write(aws, mappings, source, ["new"], v="1")
    wait_until(lambda: "new" in scan_keys(aws["dynamodb"], target))
    assert scan_keys(aws["dynamodb"], target) == expected


def test_worker_killed_mid_batch_and_throttles_retry_without_losing_records(
        aws, mappings, runtime, names):
    source, target = names("src"), names("dst")
    stream_arn = create_source_table(aws["dynamodb"], source)
    create_target_table(aws["dynamodb"], target)
    copy = copy_handler(aws["dynamodb"], target)
    calls = {"n": 0}

    def handler(event: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise TooManyRequests("Rate exceeded")  # throttles: never counted as retries
        if calls["n"] == 4:
            copy({"Records": event["Records"][:2]})  # half done, then the worker dies
            raise FunctionCrashed
        copy(event)

    runtime.register(FUNCTION, handler)
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        put(aws["dynamodb"], source, key, v="1")
    mapping_id = create(mappings, stream_arn, MaximumRetryAttempts=1)
    wait_until(lambda: scan_keys(aws["dynamodb"], target) == set(keys))
    assert calls["n"] == 5
    state = mappings.get_event_source_mapping(mapping_id)
    wait_until(lambda: mappings.get_event_source_mapping(mapping_id)["LastProcessingResult"]
               == "OK")
    assert state["State"] == "Enabled"


def test_parallelization_factor_keeps_per_key_order(aws, mappings, runtime, names):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def handler(event: dict[str, Any]) -> None:
        time.sleep(0.01)
        with lock:
            for record in event["Records"]:
                image = record["dynamodb"]["NewImage"]
                seen.setdefault(image["pk"]["S"], []).append(int(image["v"]["S"]))

    runtime.register(FUNCTION, handler)
    for version in range(6):
        for key in range(8):
            put(aws["dynamodb"], source, f"k{key}", v=str(version))
    create(mappings, stream_arn, BatchSize=3, ParallelizationFactor=4)
    wait_until(lambda: sum(len(v) for v in seen.values()) == 48)
    assert all(versions == list(range(6)) for versions in seen.values())
    assert max(len(batch) for batch in runtime.invocations(FUNCTION)) <= 3


def test_batching_window_gathers_records_written_apart(aws, mappings, runtime, names):
    source = names("src")
    stream_arn = create_source_table(aws["dynamodb"], source)
    runtime.register(FUNCTION, lambda event: None)
    create(mappings, stream_arn, MaximumBatchingWindowInSeconds=2)
    write(aws, mappings, source, ["a", "b", "c", "d"], v="1")
    wait_until(lambda: runtime.invocations(FUNCTION))
    assert [len(batch) for batch in runtime.invocations(FUNCTION)] == [4]
