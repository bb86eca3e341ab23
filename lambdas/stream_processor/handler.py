"""stream-processor's entry point: apply a DynamoDB Streams batch to the read table.

INSERT and MODIFY put the read item (every field, ``ap_id`` included); REMOVE deletes it. Every
write is conditional on ``source_sequence`` (the stream sequence number, zero-padded to 40
digits), so a redelivered or older record never overwrites a newer one, and on the transaction
id, so another transaction on the same read key (same user, same millisecond: issue 18) is never
overwritten or deleted. Such a collision is logged naming both transactions, counted in the
``ReadKeyCollisions`` metric (CloudWatch EMF), and an image that could not be applied is reported
as failed. A record that cannot be mapped or written is reported in ``batchItemFailures`` (never
dropped); the others still land.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pydantic import BaseModel, ValidationError

from lambdas.records import (
    CommandRecord,
    TransactionReadKey,
    read_item_from_command,
    read_key_from_command,
    source_sequence_of,
)
from lambdas.stream_processor.read_table import (
    Collision,
    ReadKeyCollisionError,
    conditional_delete,
    conditional_put,
)

__all__ = [
    "COLLISION_METRIC",
    "METRICS_NAMESPACE",
    "ReadKeyCollisionError",
    "UnmappableRecordError",
    "lambda_handler",
    "metrics",
    "processor",
    "record_handler",
]

#: CloudWatch namespace of the stream processor's metrics (EMF lines in its log group).
METRICS_NAMESPACE = "QueryServiceV3"
#: Stream images not applied because another transaction holds their read key (issue 18).
COLLISION_METRIC = "ReadKeyCollisions"

logger = Logger(service="stream-processor")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="stream-processor")
#: Returning every failed record (rather than raising when all fail) lets the event source
#: mapping's retry / bisect / on-failure logic decide, from the lowest failed sequence number.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
M = TypeVar("M", bound=BaseModel)


class UnmappableRecordError(Exception):
    """A stream record that cannot become a read-side write (missing field, wrong type, ...)."""


def _describe(error: ValidationError) -> str:
    """Summarise a pydantic error as 'field: problem; ...'."""
    parts = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "image"
        parts.append(f"{location}: {detail['msg']}")
    return "; ".join(parts)


def _unmappable(record: DynamoDBRecord, problem: str) -> UnmappableRecordError:
    """Log why a record cannot be mapped and return the error that reports it as failed."""
    sequence = record.dynamodb.sequence_number if record.dynamodb else None
    logger.error(
        "stream record cannot be mapped to the read side",
        extra={
            "sequence_number": sequence,
            "event_id": record.event_id,
            "event_name": record.get("eventName"),
            "problem": problem,
        },
    )
    return UnmappableRecordError(f"stream record {sequence}: {problem}")


def _parse(record: DynamoDBRecord, image_name: str, model: type[M]) -> M:
    """Decode an image of the record (NewImage or OldImage) into `model`."""
    stream = record.dynamodb
    assert stream is not None  # checked by the caller
    if image_name not in stream.raw_event:
        problem = f"{image_name} is missing (the stream view must be NEW_AND_OLD_IMAGES)"
        raise _unmappable(record, problem)
    try:
        image = stream.new_image if image_name == "NewImage" else stream.old_image
        return model.model_validate(image)
    except ValidationError as error:
        raise _unmappable(record, f"{image_name} {_describe(error)}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise _unmappable(record, f"{image_name} is not valid DynamoDB JSON: {error}") from None


def _report_collision(
    record: DynamoDBRecord, collision: Collision, sequence: str, *, applied_nothing: bool
) -> None:
    """Log a collision naming both transactions and count it in the ReadKeyCollisions metric."""
    event_name = str(record.get("eventName"))
    log = logger.error if applied_nothing else logger.warning
    log(
        collision.describe(event_name),
        extra={
            "collision": "read-key",
            "user_id": collision.key.user_id,
            "created_at": collision.key.created_at,
            "transaction_id": collision.transaction_id,
            "holder_transaction_id": collision.holder_transaction_id,
            "sequence_number": sequence,
            "event_id": record.event_id,
            "event_name": event_name,
        },
    )
    metrics.add_metric(name=COLLISION_METRIC, unit=MetricUnit.Count, value=1)


def _put(record: DynamoDBRecord, command: CommandRecord, source_sequence: str) -> None:
    """Write the read item; raise ReadKeyCollisionError if another transaction holds the key."""
    sequence = record.dynamodb.sequence_number if record.dynamodb else ""
    key = read_key_from_command(command)
    result = conditional_put(
        key,
        read_item_from_command(command, source_sequence),
        command.transaction_id,
        source_sequence,
    )
    context = {"sequence_number": sequence, "transaction_id": command.transaction_id}
    if result.outcome == "written":
        logger.debug("read item written", extra=context)
    elif result.outcome == "stale":
        logger.info(
            "skipped stream record: the read item already reflects it or a newer one",
            extra=context,
        )
    else:
        assert result.holder is not None
        collision = Collision(key, command.transaction_id, result.holder)
        _report_collision(record, collision, str(sequence), applied_nothing=True)
        raise ReadKeyCollisionError(collision, str(record.get("eventName")), str(sequence))


def _delete(record: DynamoDBRecord, old: TransactionReadKey, source_sequence: str) -> None:
    """Delete the transaction's read item unless it is newer or another transaction's."""
    sequence = record.dynamodb.sequence_number if record.dynamodb else ""
    key = old.read_key()
    result = conditional_delete(key, old.transaction_id, source_sequence)
    if result.outcome == "stale":
        logger.info(
            "skipped delete: the read item comes from a newer stream record",
            extra={"sequence_number": sequence, "transaction_id": old.transaction_id},
        )
    elif result.outcome == "collision":
        # The removed transaction never held the key (its images were reported when they came):
        # nothing of it is on the read side, and the holder's item must stay.
        assert result.holder is not None
        collision = Collision(key, old.transaction_id, result.holder)
        _report_collision(record, collision, str(sequence), applied_nothing=False)


def record_handler(record: DynamoDBRecord) -> None:
    """Apply one stream record to the read table; raise to report it in batchItemFailures."""
    stream = record.dynamodb
    if stream is None or not stream.sequence_number:
        raise _unmappable(record, "dynamodb.SequenceNumber is missing")
    sequence = stream.sequence_number
    try:
        source_sequence = source_sequence_of(sequence)
        event_name = record.event_name
    except (ValueError, KeyError) as error:
        raise _unmappable(record, str(error)) from None
    if event_name in (DynamoDBRecordEventName.INSERT, DynamoDBRecordEventName.MODIFY):
        command = _parse(record, "NewImage", CommandRecord)
        if event_name is DynamoDBRecordEventName.MODIFY and "OldImage" in stream.raw_event:
            old = _parse(record, "OldImage", TransactionReadKey)
            if old.read_key() != read_key_from_command(command):  # the read key moved
                _delete(record, old, source_sequence)
        _put(record, command, source_sequence)
    else:
        _delete(record, _parse(record, "OldImage", TransactionReadKey), source_sequence)


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Process a DynamoDB Streams batch and return the partial batch response.

    One log line per batch says how many records it held and how many failed.
    """
    # A zero every invocation keeps the metric's series continuous (an alarm on Sum > 0 then
    # never sits in INSUFFICIENT_DATA) and the flush never empty.
    metrics.add_metric(name=COLLISION_METRIC, unit=MetricUnit.Count, value=0)
    records = len(event.get("Records") or [])
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    except Exception:
        logger.error("batch failed", extra={"records": records, "succeeded": 0, "failed": records})
        raise
    failed = len(response.get("batchItemFailures") or [])
    logger.info(
        "batch processed",
        extra={"records": records, "succeeded": records - failed, "failed": failed},
    )
    return response
