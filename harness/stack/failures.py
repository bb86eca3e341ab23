"""Whether a command record was rejected on its way to the read side, and why.

A record the stream processor cannot map is reported failed, retried, and finally sent to the
mapping's on-failure destination. As on AWS, that SQS message describes the batch, not the record
(``DDBStreamBatchInfo``: shard, first and last sequence numbers; ``responseContext``); so the
watcher reads that range of the stream back to see whether the record's keys are in it, and takes
the reason from the function's log group (``/aws/lambda/<function>``) lines naming its sequence
number. Messages are peeked with ``VisibilityTimeout=0``, so the queue keeps them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class RecordRejected(AssertionError):
    """The record reached the on-failure destination instead of the read side; says why."""


@dataclass
class FailureWatch:
    """Peeks at the on-failure queue of the mapping from ``source_table`` while a record syncs."""

    clients: Any  # callable: service name -> boto3 client on the stack's endpoint
    source_table: str = "command-records"
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 1000)
    _queue_url: str | None = None
    _function: str | None = None
    _resolved: bool = False
    _seen: set[tuple[str, str]] = field(default_factory=set)  # (message id, record key)

    def _resolve(self) -> None:
        """The mapping's on-failure queue and function, read from the Lambda API once."""
        self._resolved = True
        table_arn_part = f":table/{self.source_table}/stream/"
        mappings = self.clients("lambda").list_event_source_mappings()["EventSourceMappings"]
        for mapping in mappings:
            if table_arn_part not in str(mapping.get("EventSourceArn", "")):
                continue
            destination = (
                mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
            )
            self._function = str(mapping.get("FunctionArn", "")).rsplit(":", 1)[-1] or None
            if destination.startswith("arn:aws:sqs:"):
                queue = destination.rsplit(":", 1)[-1]
                self._queue_url = self.clients("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
            return

    def check(self, key: dict[str, Any]) -> None:
        """Raise :class:`RecordRejected` if a new on-failure message covers the record ``key``."""
        try:
            if not self._resolved:
                self._resolve()
            if self._queue_url is None:
                return
            messages = self.clients("sqs").receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
        except (BotoCoreError, ClientError):
            return  # the watch is a courtesy: the read-side wait still decides
        wanted = json.dumps(key, sort_keys=True)
        for message in messages:
            if (message["MessageId"], wanted) in self._seen:
                continue
            self._seen.add((message["MessageId"], wanted))
            sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
            if sent and sent < self.since_ms:
                continue
            try:
                body = json.loads(message["Body"])
                info = body["DDBStreamBatchInfo"]
            except (ValueError, KeyError, TypeError):
                continue
            sequence = self._sequence_of(key, info)
            if sequence is not None:
                raise RecordRejected(self._explain(key, sequence, body))

    def _sequence_of(self, key: dict[str, Any], info: dict[str, Any]) -> str | None:
        """The sequence number of ``key``'s record within the batch ``info`` describes, if any."""
        try:
            streams = self.clients("dynamodbstreams")
            iterator = streams.get_shard_iterator(
                StreamArn=info["streamArn"],
                ShardId=info["shardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"],
            )["ShardIterator"]
            end = int(info["endSequenceNumber"])
            while iterator:
                page = streams.get_records(ShardIterator=iterator, Limit=100)
                for record in page.get("Records", []):
                    stream = record["dynamodb"]
                    if int(stream["SequenceNumber"]) > end:
                        return None
                    if stream.get("Keys") == key:
                        return str(stream["SequenceNumber"])
                if not page.get("Records"):
                    return None
                iterator = page.get("NextShardIterator")
        except (BotoCoreError, ClientError, KeyError, ValueError):
            return None
        return None

    def _explain(self, key: dict[str, Any], sequence: str, body: dict[str, Any]) -> str:
        context = body.get("requestContext", {})
        response = body.get("responseContext", {})
        reason = self._logged_problem(sequence) or (
            f"function error {response.get('functionError')}"
            if response.get("functionError")
            else "see the function's log"
        )
        plain = {name: next(iter(value.values())) for name, value in key.items()}
        return (
            f"the record {json.dumps(plain, sort_keys=True)} was rejected by {self._function}: "
            f"{reason} (sent to the on-failure queue after {context.get('approximateInvokeCount', '?')} "
            f"invocation(s), condition {context.get('condition', '?')}; stream sequence {sequence})"
        )

    def _logged_problem(self, sequence: str) -> str | None:
        """The ``problem`` the function logged for ``sequence`` (its ERROR line), if found."""
        if self._function is None:
            return None
        try:
            events = self.clients("logs").filter_log_events(
                logGroupName=f"/aws/lambda/{self._function}", startTime=self.since_ms
            ).get("events", [])
        except (BotoCoreError, ClientError):
            return None
        for event in events:
            text = str(event.get("message", ""))
            if sequence not in text:
                continue
            try:
                line = json.loads(text[text.index("{") :])
            except ValueError:
                return text.strip()
            if isinstance(line, dict) and line.get("problem"):
                return str(line["problem"])
            if isinstance(line, dict) and line.get("collision") == "read-key":  # docs/decisions/0001
                return f"a read-key collision: {line.get('message', '')}"
        return None
