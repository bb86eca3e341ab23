"""The DynamoDB Streams patches (items 4 and 5 of harness.aws.patches, which applies them):
stream records as AWS writes them (the table's region, an eventSourceARN, one record per
UpdateItem, none for a write that changes nothing), GetRecords answers written with one JSON
dump, and shard iterators kept bounded with AWS's errors for unknown or expired ones; and
``get_records_answer``, the endpoint's own pollers' GetRecords without moto's request cycle."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from harness.aws.patches import DYNAMODB_LOCK, wrap_method
from harness.aws.responses import (
    ShardIteratorStore,
    error_response,
    streams_error,
    validation_message,
    wire_value,
)

__all__ = [
    "UPDATE_RECORDS",
    "bound_shard_iterators",
    "get_records_answer",
    "serialize_get_records_once",
    "write_records_as_aws",
]

logger = logging.getLogger("harness.aws.patches")
ITERATOR_SHAPE = re.compile(r"^arn:aws[a-z-]*:dynamodb:[^|]+/stream/[^|]+\|1\|.+$")
# .buffer: the (old, new) pairs of the UpdateItem running in this thread (query_patches sets it)
UPDATE_RECORDS = threading.local()


# ---- 4: stream records as AWS writes them --------------------------------------------------


def write_records_as_aws() -> None:
    """Records carry the table's region and an eventSourceARN; one UpdateItem adds one record;
    a write that changes nothing adds none."""
    from moto.dynamodb.models.table import StreamRecord, StreamShard  # noqa: PLC0415

    def make_record_init(original: Callable[..., None]) -> Callable[..., None]:
        def __init__(self: Any, table: Any, *args: Any, **kwargs: Any) -> None:
            original(self, table, *args, **kwargs)
            self.record["awsRegion"] = table.region_name
            self.record["eventSourceARN"] = f"{table.table_arn}/stream/{table.latest_stream_label}"

        return __init__

    def make_add(original: Callable[..., None]) -> Callable[..., None]:
        def add(self: Any, old: Any, new: Any) -> None:
            buffer = getattr(UPDATE_RECORDS, "buffer", None)
            if buffer is not None:  # inside UpdateItem: one record for the whole update
                buffer.append((old, new))
                return
            if old is not None and new is not None and old == new:
                return  # AWS writes no record when nothing changed
            if old is None and new is None:
                return
            original(self, old, new)

        return add

    wrap_method(StreamRecord, "__init__", make_record_init)
    wrap_method(StreamShard, "add", make_add)


def serialize_get_records_once() -> None:
    """GetRecords answers written with one JSON dump: moto walks the botocore model for every
    attribute of every record (~1.4 ms of a ~2 ms GetRecords of one record). The records are
    in wire form already but for the two types the model converts: datetimes become epoch
    seconds truncated to milliseconds, bytes become base64 (moto's serializer does the same)."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: PLC0415

    def make_serialized(original: Callable[..., Any]) -> Callable[..., Any]:
        def serialized(self: Any, action_result: Any) -> Any:
            result = getattr(action_result, "result", None)
            action = str(self.headers.get("X-Amz-Target", "")).rsplit(".", 1)[-1]
            if action != "GetRecords" or not isinstance(result, dict):
                return original(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
            return 200, headers, json.dumps(result, default=wire_value)

        return serialized

    wrap_method(DynamoDBStreamsHandler, "serialized", make_serialized)


def get_records_answer(body: bytes, region: str, account_id: str) -> tuple[int, dict[str, Any]]:
    """A GetRecords request (its JSON ``body``) answered as ``DynamoDBStreamsHandler`` answers it
    (the patched backend under moto's lock, the one JSON dump above, eventSourceARN on every
    record, the same errors), as a document rather than bytes, without moto's request cycle.

    For the endpoint's own pollers (``Endpoint._streams_request``, which keeps the reset gate
    and IAM enforcement): moto's cycle (its request object, parameter parsing, a 52-character
    request id, the CRC32 header) and two more JSON round trips were ~0.5 ms of a ~0.7 ms read
    on the sync path, in the endpoint's process. ``account_id``: whose stream (moto's backend).
    """
    from moto.core.exceptions import JsonRESTError  # noqa: PLC0415
    from moto.dynamodbstreams.models import dynamodbstreams_backends  # noqa: PLC0415

    try:
        params = json.loads(body or b"{}")
        limit = params.get("Limit")
        with DYNAMODB_LOCK:  # as _locked_call_action holds it around the handler's call
            result = dynamodbstreams_backends[account_id][region].get_records(
                params.get("ShardIterator"), 1000 if limit is None else limit)
            text = json.dumps(result, default=wire_value)  # moto's own objects: under the lock
    except JsonRESTError as error:  # AWS's errors (bound_shard_iterators)
        return error.code, json.loads(error.get_body())
    except Exception as exc:  # as _locked_call_action answers a crash of a streams request
        logger.warning("moto crashed on DynamoDBStreams_20120810.GetRecords: %s: %s",
                       type(exc).__name__, exc)
        status, _, text = error_response(400, "ValidationException", validation_message(exc))
        return status, json.loads(text)
    document: dict[str, Any] = json.loads(text)
    stream_arn = str(document.get("NextShardIterator", "")).split("|", 1)[0]
    for record in document.get("Records", []):  # as responses.with_event_source_arn
        record.setdefault("eventSourceARN", stream_arn)
    return 200, document


# ---- 5: bounded shard iterators and AWS errors --------------------------------------------


def bound_shard_iterators() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend  # noqa: PLC0415

    def make_init(original: Callable[..., None]) -> Callable[..., None]:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.shard_iterators = ShardIteratorStore()

        return __init__

    def make_get_shard_iterator(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_shard_iterator(
            self: Any,
            arn: str,
            shard_id: str,
            shard_iterator_type: str,
            sequence_number: Any = None,
        ) -> Any:
            match = re.match(
                r"^arn:aws[a-z-]*:dynamodb:[^:]+:\d{12}:table/([^/]+)/stream/(.+)$", arn or ""
            )
            if match is None:
                raise streams_error("ValidationException", f"Invalid StreamArn: {arn}")
            table = self.dynamodb.get_table(match.group(1))  # ResourceNotFoundException
            if table.stream_shard is None or table.latest_stream_label != match.group(2):
                raise streams_error(
                    "ResourceNotFoundException",
                    f"Requested resource not found: Stream: {arn} not found",
                )
            if table.stream_shard.id != shard_id:
                raise streams_error(
                    "ResourceNotFoundException",
                    "Requested resource not found: Shard does not exist",
                )
            if shard_iterator_type not in (
                "TRIM_HORIZON",
                "LATEST",
                "AT_SEQUENCE_NUMBER",
                "AFTER_SEQUENCE_NUMBER",
            ):
                raise streams_error(
                    "ValidationException", f"Invalid ShardIteratorType: {shard_iterator_type}"
                )
            if shard_iterator_type.endswith("SEQUENCE_NUMBER"):
                if sequence_number is None:
                    raise streams_error(
                        "ValidationException",
                        f"SequenceNumber is required for ShardIteratorType {shard_iterator_type}",
                    )
                if int(sequence_number) < table.stream_shard.starting_sequence_number:
                    raise streams_error(
                        "TrimmedDataAccessException",
                        f"Sequence number {sequence_number} is before the "
                        "trim horizon of the shard",
                    )
            return original(self, arn, shard_id, shard_iterator_type, sequence_number)

        return get_shard_iterator

    def make_get_records(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_records(self: Any, iterator_arn: str, limit: Any) -> Any:
            if limit is not None and not 1 <= int(limit) <= 1000:
                raise streams_error(
                    "ValidationException", f"Invalid Limit: {limit} (must be between 1 and 1000)"
                )
            if not isinstance(self.shard_iterators, ShardIteratorStore):
                store = ShardIteratorStore()
                for key, value in list(self.shard_iterators.items())[
                    -ShardIteratorStore.max_entries :
                ]:
                    store[key] = value
                self.shard_iterators = store
            if self.shard_iterators.get(iterator_arn) is None:
                if ITERATOR_SHAPE.match(iterator_arn or ""):
                    raise streams_error(
                        "ExpiredIteratorException",
                        "Iterator expired. Shard iterators are valid for 15 minutes; get a new one",
                    )
                raise streams_error("ValidationException", "Invalid ShardIterator")
            return original(self, iterator_arn, limit)

        return get_records

    wrap_method(DynamoDBStreamsBackend, "__init__", make_init)
    wrap_method(DynamoDBStreamsBackend, "get_shard_iterator", make_get_shard_iterator)
    wrap_method(DynamoDBStreamsBackend, "get_records", make_get_records)
    _reuse_iterator_on_empty_reads()


def _reuse_iterator_on_empty_reads() -> None:
    """A GetRecords that finds nothing answers the iterator it read as NextShardIterator, its
    15 minutes restarted, where moto makes a new one at the same position (AWS answers a new
    string; iterators are opaque). An idle poller reads each shard every second: a new ~1.4 KB
    iterator each time grew the endpoint by ~85 KB a minute until the store's bound."""
    from moto.dynamodbstreams.models import ShardIterator  # noqa: PLC0415

    def make_get(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def get(self: Any, limit: int = 1000) -> dict[str, Any]:
            store = self.streams_backend.shard_iterators
            shard = self.stream_shard
            position = self.sequence_number - shard.starting_sequence_number
            if isinstance(store, ShardIteratorStore) and 0 <= position >= len(shard.items):
                store[self.arn] = self  # the same position: the same iterator, born again
                return {"NextShardIterator": self.arn, "Records": []}
            return original(self, limit)

        return get

    wrap_method(ShardIterator, "get", make_get)
