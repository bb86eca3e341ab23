"""Delivering one batch of DynamoDB stream records to a function, with AWS's retry semantics.

Retries (``MaximumRetryAttempts``), ``BisectBatchOnFunctionError``, ``MaximumRecordAgeInSeconds``,
``ReportBatchItemFailures`` and the on-failure destination live here; reading the shard and
checkpointing live in ``harness.streams.poller``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from harness.streams.types import (
    DynamoDBStreamEventRecord,
    FailureCondition,
    Invoker,
    InvokeResultLike,
    OnFailureRecord,
    OnFailureResponseContext,
    StreamRecordData,
)

__all__ = [
    "BatchDelivery",
    "FailureDestination",
    "PollerConfig",
    "PollerStopped",
    "PollerTimings",
    "SqsFailureDestination",
    "StreamRecord",
    "iso_timestamp",
    "parse_failed_index",
]

LOG = logging.getLogger("harness.streams.poller")

RESULT_OK = "OK"
RESULT_FUNCTION_FAILED = "PROBLEM: Function call failed"
RESULT_NONE = "No records processed"
#: Lambda's synchronous invocation payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: DynamoDB Streams keeps records 24 hours.
STREAM_RETENTION_S = 24 * 3600


class PollerStopped(Exception):
    """The mapping was disabled, deleted or the endpoint is stopping: abandon the batch."""


@dataclass(frozen=True)
class PollerConfig:
    """The settings of one mapping that the poller reads (may change while it runs)."""

    uuid: str
    function_name: str
    function_arn: str
    event_source_arn: str
    starting_position: str
    batch_size: int = 100
    maximum_batching_window_s: int = 0
    parallelization_factor: int = 1
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    on_failure_destination: str | None = None
    source_type: str = "dynamodb"
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific members, as sent

    @property
    def region(self) -> str:
        """The stream's region (from its ARN)."""
        return self.event_source_arn.split(":")[3]


@dataclass(frozen=True)
class PollerTimings:
    """Delays of the poller; tests shorten them."""

    fallback_poll_s: float = 1.0
    retry_base_s: float = 0.05
    retry_max_s: float = 2.0
    shard_rescan_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), doubling up to ``retry_max_s``."""
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class StreamRecord:
    """A stream record as read from the shard, with its Lambda event form."""

    sequence_number: str
    arrival: float
    key_hash: int
    size: int
    event: DynamoDBStreamEventRecord

    @classmethod
    def from_stream(cls, raw: dict[str, Any], stream_arn: str, region: str) -> StreamRecord:
        """Convert a GetRecords record (boto3 form) into the event record AWS sends."""
        data = raw["dynamodb"]
        created = data.get("ApproximateCreationDateTime")
        arrival = created.timestamp() if isinstance(created, datetime) else float(created or 0)
        dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": float(int(arrival))}
        for name in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes",
                     "StreamViewType"):
            if name in data:
                dynamodb[name] = data[name]
        event: dict[str, Any] = {
            "eventID": raw["eventID"],
            "eventName": raw["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": region,
            "dynamodb": dynamodb,
            "eventSourceARN": stream_arn,
        }
        if "userIdentity" in raw:
            event["userIdentity"] = raw["userIdentity"]
        keys = json.dumps(data.get("Keys", {}), sort_keys=True)
        return cls(
            sequence_number=str(data["SequenceNumber"]),
            arrival=arrival,
            key_hash=zlib.crc32(keys.encode()),
            size=len(json.dumps(event)) + 2,
            event=_as_event_record(event),
        )


def _as_event_record(event: dict[str, Any]) -> DynamoDBStreamEventRecord:
    data: StreamRecordData = event["dynamodb"]
    record: DynamoDBStreamEventRecord = {
        "eventID": event["eventID"], "eventName": event["eventName"],
        "eventVersion": event["eventVersion"], "eventSource": event["eventSource"],
        "awsRegion": event["awsRegion"], "dynamodb": data,
        "eventSourceARN": event["eventSourceARN"],
    }
    if "userIdentity" in event:
        record["userIdentity"] = event["userIdentity"]
    return record


def iso_timestamp(epoch: float) -> str:
    """``2019-11-14T00:38:06.021Z`` as AWS writes times in destination records."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_failed_index(payload: bytes, records: list[StreamRecord]) -> int | None:
    """Index of the first record to retry from a partial batch response; None = all succeeded.

    AWS rules: a null/empty response or an empty/null ``batchItemFailures`` is a full success;
    an empty/null ``itemIdentifier``, a wrong key or an identifier not in the batch is a full
    failure (index 0); otherwise the lowest reported sequence number is the retry point.
    A response that is not JSON, or JSON that is neither null nor an object, is a full failure.
    """
    if not payload.strip():
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return 0
    if body is None:
        return None
    if not isinstance(body, dict):
        return 0
    failures = body.get("batchItemFailures")
    if failures is None or failures == []:
        return None
    if not isinstance(failures, list):
        return 0
    positions = {record.sequence_number: index for index, record in enumerate(records)}
    lowest: int | None = None
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return 0
        index = positions[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


class FailureDestination(Protocol):
    """Where discarded batches are reported (the SQS queue of ``DestinationConfig.OnFailure``)."""

    def send(self, destination_arn: str, record: OnFailureRecord) -> None: ...


@dataclass
class _Attempt:
    records: list[StreamRecord]
    retries: int = 0
    invokes: int = 0
    last_result: InvokeResultLike | None = None
    # made when first needed (a failure record, a split): uuid4 reads os.urandom, which lets go
    # of the GIL, and a poller that just read its batch then waits behind the endpoint's threads
    # for it back before it invokes (~0.25 ms of each batch's path on a loaded machine)
    _request_id: str | None = None

    @property
    def request_id(self) -> str:
        """The id of this batch's invocations in its on-failure record."""
        if self._request_id is None:
            self._request_id = str(uuid.uuid4())
        return self._request_id


class BatchDelivery:
    """Delivers batches of one shard to the mapping's function until each record is done.

    "Done" means the function succeeded for it, or it was discarded (retries exhausted or too
    old) and, when a destination is configured, reported there. Throttles and invoke errors
    where the function never ran are retried without counting.
    """

    def __init__(
        self,
        *,
        config: Callable[[], PollerConfig],
        invoker: Invoker,
        destination: FailureDestination,
        shard_id: str,
        stop: threading.Event,
        clock: Callable[[], float],
        timings: PollerTimings,
        report: Callable[[str], None],
    ) -> None:
        self._config = config
        self._invoker = invoker
        self._destination = destination
        self._shard_id = shard_id
        self._stop = stop
        self._clock = clock
        self._timings = timings
        self._report = report

    def deliver(self, records: list[StreamRecord], on_done: Callable[[StreamRecord], None]) -> None:
        """Process ``records`` in order; ``on_done`` gets the last record of each finished run."""
        pending: deque[_Attempt] = deque([_Attempt(records)])
        while pending:
            attempt = pending[0]
            config = self._config()
            expired = self._expired_prefix(attempt.records, config)
            if expired:
                self._discard(config, attempt, attempt.records[:expired], "RecordAgeExceeded")
                on_done(attempt.records[expired - 1])
                attempt.records = attempt.records[expired:]
                if not attempt.records:
                    pending.popleft()
                    continue
            result = self._invoke(config, attempt.records)
            attempt.invokes += 1
            attempt.last_result = result
            failed = self._failed_index(config, result, attempt.records)
            if failed is None:
                self._report(RESULT_OK)
                on_done(attempt.records[-1])
                pending.popleft()
                continue
            self._report(RESULT_FUNCTION_FAILED)
            LOG.info("mapping %s shard %s: function failed for %d record(s) from %s (%s)",
                     config.uuid, self._shard_id, len(attempt.records) - failed,
                     attempt.records[failed].sequence_number, result.function_error or "partial")
            if failed > 0:
                on_done(attempt.records[failed - 1])
                attempt.records = attempt.records[failed:]
                if config.bisect_batch_on_function_error:
                    continue  # split at the reported record: not a retry
            elif config.bisect_batch_on_function_error and len(attempt.records) > 1:
                middle = len(attempt.records) // 2
                pending.popleft()
                for half in (attempt.records[middle:], attempt.records[:middle]):
                    pending.appendleft(_Attempt(half, attempt.retries, attempt.invokes,
                                                attempt.last_result, attempt.request_id))
                continue  # a split is not a retry
            attempt.retries += 1
            limit = config.maximum_retry_attempts
            if 0 <= limit < attempt.retries:
                self._discard(config, attempt, attempt.records, "RetryAttemptsExhausted")
                on_done(attempt.records[-1])
                pending.popleft()
                continue
            self._sleep(self._timings.backoff(attempt.retries))

    def _expired_prefix(self, records: list[StreamRecord], config: PollerConfig) -> int:
        limit = config.maximum_record_age_s if config.maximum_record_age_s >= 0 else None
        oldest_allowed = self._clock() - (limit if limit is not None else STREAM_RETENTION_S)
        count = 0
        for record in records:
            if record.arrival >= oldest_allowed:
                break
            count += 1
        return count

    def _failed_index(
        self, config: PollerConfig, result: InvokeResultLike, records: list[StreamRecord]
    ) -> int | None:
        if result.function_error:
            return 0
        if not config.report_batch_item_failures:
            return None
        return parse_failed_index(result.payload, records)

    def _invoke(self, config: PollerConfig, records: list[StreamRecord]) -> InvokeResultLike:
        payload = json.dumps({"Records": [record.event for record in records]}).encode()
        failures = 0
        while True:
            if self._stop.is_set():
                raise PollerStopped
            try:
                result = self._invoker.invoke(config.function_arn, payload)
            except Exception as exc:  # throttled, not found, runtime down: the function never ran
                failures += 1
                self._report(RESULT_FUNCTION_FAILED)
                LOG.warning("mapping %s: invoke of %s did not run (%s: %s); retrying",
                            config.uuid, config.function_name, type(exc).__name__, exc)
                self._sleep(self._timings.backoff(failures))
                continue
            if 200 <= result.status_code < 300:
                return result
            failures += 1
            LOG.warning("mapping %s: invoke of %s answered HTTP %d; retrying",
                        config.uuid, config.function_name, result.status_code)
            self._sleep(self._timings.backoff(failures))

    def _discard(
        self,
        config: PollerConfig,
        attempt: _Attempt,
        records: list[StreamRecord],
        condition: FailureCondition,
    ) -> None:
        LOG.warning("mapping %s shard %s: discarding %d record(s) %s..%s (%s)", config.uuid,
                    self._shard_id, len(records), records[0].sequence_number,
                    records[-1].sequence_number, condition)
        destination = config.on_failure_destination
        if destination is None:
            return
        message = self._failure_record(config, attempt, records, condition)
        failures = 0
        while True:
            if self._stop.is_set():
                raise PollerStopped
            try:
                self._destination.send(destination, message)
                return
            except Exception as exc:
                failures += 1
                self._report(f"PROBLEM: Could not send to the on-failure destination {destination}")
                LOG.warning("mapping %s: sending to %s failed (%s); retrying", config.uuid,
                            destination, exc)
                self._sleep(self._timings.backoff(failures))

    def _failure_record(
        self,
        config: PollerConfig,
        attempt: _Attempt,
        records: list[StreamRecord],
        condition: FailureCondition,
    ) -> OnFailureRecord:
        message: OnFailureRecord = {
            "requestContext": {
                "requestId": attempt.request_id,
                "functionArn": config.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempt.invokes,
            },
            "version": "1.0",
            "timestamp": iso_timestamp(self._clock()),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id,
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "approximateArrivalOfFirstRecord": iso_timestamp(records[0].arrival),
                "approximateArrivalOfLastRecord": iso_timestamp(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": config.event_source_arn,
            },
        }
        last = attempt.last_result
        if last is not None:
            response: OnFailureResponseContext = {
                "statusCode": last.status_code,
                "executedVersion": str(getattr(last, "executed_version", "$LATEST") or "$LATEST"),
            }
            if last.function_error:
                response["functionError"] = last.function_error
            message["responseContext"] = response
            request_id = getattr(last, "request_id", "")
            if isinstance(request_id, str) and request_id:
                message["requestContext"]["requestId"] = request_id
        return message

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise PollerStopped


class SqsFailureDestination:
    """Sends on-failure records to an SQS queue given by its ARN (one attempt per call)."""

    def __init__(self, sqs_client: Any = None,
                 clients: Callable[[str, str, str], Any] | None = None) -> None:
        self._sqs = sqs_client
        self._clients = clients  # (service, region, account) -> client: the queue's own
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def _client(self, arn: str) -> Any:
        if self._clients is None:
            return self._sqs
        parts = arn.split(":")
        return self._clients("sqs", parts[3], parts[4])

    def send(self, destination_arn: str, record: OnFailureRecord) -> None:
        """Send ``record`` as the message body (JSON)."""
        self._client(destination_arn).send_message(QueueUrl=self._queue_url(destination_arn),
                                                   MessageBody=json.dumps(record))

    def _queue_url(self, arn: str) -> str:
        with self._lock:
            cached = self._urls.get(arn)
        if cached is not None:
            return cached
        _, _, _, _, account, name = arn.split(":", 5)
        url = str(self._client(arn).get_queue_url(
            QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
        with self._lock:
            self._urls[arn] = url
        return url
