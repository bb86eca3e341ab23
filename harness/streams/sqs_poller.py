"""The poller of one SQS event source mapping: receive, batch, invoke, delete.

AWS's semantics (Lambda developer guide, "Using Lambda with Amazon SQS"):
- Lambda polls the queue and invokes the function synchronously with a batch of up to
  ``BatchSize`` messages; it invokes when the batch is full, when the batching window
  (``MaximumBatchingWindowInSeconds``) ends, or when the payload reaches 6 MB. With a window of
  0 it invokes with what one poll returned.
- Messages stay in the queue while the function runs (invisible for the queue's visibility
  timeout). On success Lambda deletes them. On a function error it deletes nothing: the batch
  becomes visible again after the visibility timeout and is received again; after the queue's
  ``maxReceiveCount`` SQS itself moves a message to the redrive policy's dead-letter queue.
- With ``FunctionResponseTypes: ["ReportBatchItemFailures"]`` the function returns
  ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``: everything else is deleted;
  an empty list or a null answer is full success; an identifier that is empty or not in the
  batch makes the whole batch a failure.
Differences here: one poller per mapping invokes one batch at a time (AWS scales pollers up to
``ScalingConfig.MaximumConcurrency``); polls are short (``WaitTimeSeconds`` 0) and the endpoint
wakes the poller after each SendMessage, with a fallback poll every ``fallback_poll_s``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.streams.batch import (
    MAX_PAYLOAD_BYTES,
    RESULT_FUNCTION_FAILED,
    RESULT_OK,
    PollerConfig,
    PollerTimings,
)
from harness.streams.types import Invoker, InvokeResultLike, SQSEventRecord

__all__ = ["SqsPoller", "event_record", "failed_message_ids"]

LOG = logging.getLogger("harness.streams.sqs_poller")


def event_record(message: dict[str, Any], queue_arn: str) -> SQSEventRecord:
    """One ReceiveMessage message as the record Lambda puts in an SQS event."""
    attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
    message_attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        entry: dict[str, Any] = {
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            import base64  # noqa: PLC0415

            raw = value["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(raw).decode() if isinstance(
                raw, bytes) else raw
        message_attributes[name] = entry
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def failed_message_ids(payload: bytes, batch: list[SQSEventRecord]) -> set[str] | None:
    """The messageIds a partial batch response reports failed (None: all succeeded); a
    malformed answer or an unknown or empty identifier fails the whole batch."""
    every = {record["messageId"] for record in batch}
    try:
        answer = json.loads(payload) if payload.strip() else None
    except ValueError:
        return None  # not a partial batch response: the function succeeded
    if not isinstance(answer, dict) or answer.get("batchItemFailures") in (None, []):
        return None
    failures = answer["batchItemFailures"]
    if not isinstance(failures, list):
        return every
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in every:
            return every
        failed.add(str(identifier))
    return failed


class SqsPoller:
    """Receives from one queue and delivers batches to the mapping's function."""

    def __init__(
        self,
        *,
        config: Callable[[], PollerConfig],
        sqs_client: Any,
        invoker: Invoker,
        on_ready: Callable[[], None],
        on_stopped: Callable[[], None],
        on_result: Callable[[str], None],
        timings: PollerTimings | None = None,
        previous: Any = None,
    ) -> None:
        self._config = config
        self._previous = previous  # the mapping's earlier poller: it finishes its batch first
        self._sqs = sqs_client
        self._invoker = invoker
        self._on_ready = on_ready
        self._on_stopped = on_stopped
        self._on_result = on_result
        self._timings = timings or PollerTimings()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._queue_url: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"esm-{config().uuid[:8]}")

    # -- lifecycle (the same surface as harness.streams.poller.StreamPoller) -----------------

    def start(self) -> None:
        """Start the polling thread (returns at once; ``on_ready`` follows)."""
        self._thread.start()

    def wake(self) -> None:
        """A message was sent: poll now."""
        self._wake.set()

    def request_stop(self) -> None:
        """Stop after the current call; messages received and not deleted reappear later."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    # -- polling ---------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        try:
            if self._previous is not None:
                self._previous.join()
                self._previous = None
            self._on_ready()
            while not self._stop.is_set():
                try:
                    delivered = self._poll_once()
                    failures = 0
                except Exception as exc:  # queue gone, endpoint restarting: retried with backoff
                    failures += 1
                    self._queue_url = None
                    LOG.warning("mapping %s: polling %s failed (%s: %s); retrying",
                                self._config().uuid, self._config().event_source_arn,
                                type(exc).__name__, exc)
                    self._stop.wait(self._timings.backoff(failures))
                    continue
                if not delivered:
                    self._wake.wait(self._timings.fallback_poll_s)
                    self._wake.clear()
        finally:
            self._stop.set()
            self._on_stopped()

    def _url(self, arn: str) -> str:
        if self._queue_url is None:
            _, _, _, _, account, name = arn.split(":", 5)
            self._queue_url = str(self._sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
        return self._queue_url

    def _receive(self, config: PollerConfig) -> list[dict[str, Any]]:
        """Up to BatchSize messages: one poll, or polls until the window ends or 6 MB."""
        url = self._url(config.event_source_arn)
        deadline = time.monotonic() + config.maximum_batching_window_s
        messages: list[dict[str, Any]] = []
        size = 0
        while not self._stop.is_set() and len(messages) < config.batch_size:
            answer = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, config.batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = answer.get("Messages", [])
            messages += got
            size += sum(len(m.get("Body", "")) + 1024 for m in got)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or size >= MAX_PAYLOAD_BYTES * 0.9:
                break
            if not got:
                self._wake.wait(min(remaining, self._timings.fallback_poll_s))
                self._wake.clear()
        return messages

    def _poll_once(self) -> bool:
        config = self._config()
        messages = self._receive(config)
        if not messages:
            return False
        batch = [event_record(m, config.event_source_arn) for m in messages]
        if self._stop.is_set():
            return True  # not invoked: the messages reappear after their visibility timeout
        result = self._invoke(config, batch)
        if result is None:
            return True
        if result.function_error:
            failed = {record["messageId"] for record in batch}
        elif config.report_batch_item_failures:
            failed = failed_message_ids(result.payload, batch) or set()
        else:
            failed = set()
        self._on_result(RESULT_FUNCTION_FAILED if failed else RESULT_OK)
        done = [record for record in batch if record["messageId"] not in failed]
        self._delete(config, done)
        if failed:
            LOG.info("mapping %s: %d of %d message(s) failed; they reappear after the queue's "
                     "visibility timeout", config.uuid, len(failed), len(batch))
        return True

    def _invoke(self, config: PollerConfig, batch: list[SQSEventRecord]) -> InvokeResultLike | None:
        payload = json.dumps({"Records": batch}).encode()
        try:
            result = self._invoker.invoke(config.function_arn, payload)
        except Exception as exc:  # throttled, not found: the function never ran
            self._on_result(RESULT_FUNCTION_FAILED)
            LOG.warning("mapping %s: invoke of %s did not run (%s: %s); the messages reappear "
                        "after their visibility timeout", config.uuid, config.function_name,
                        type(exc).__name__, exc)
            self._stop.wait(self._timings.retry_max_s)
            return None
        return result

    def _delete(self, config: PollerConfig, records: list[SQSEventRecord]) -> None:
        url = self._url(config.event_source_arn)
        for start in range(0, len(records), 10):
            chunk = records[start:start + 10]
            answer = self._sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)])
            for failure in answer.get("Failed", []):
                LOG.warning("mapping %s: deleting a processed message failed (%s); it will be "
                            "delivered again", config.uuid, failure.get("Message"))
