"""stream-processor's entry point: apply a DynamoDB Streams batch to the read table.

INSERT and MODIFY put the read item (every field, ``ap_id`` included); REMOVE deletes it. Every
write is conditional on ``source_sequence`` (the stream sequence number, zero-padded to 40
digits), so a redelivered or older record never overwrites a newer one. A record that cannot be
mapped or written is reported in ``batchItemFailures`` (never dropped); the others still land.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aws_lambda_powertools import Logger
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
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from lambdas.dynamodb_client import dynamodb_client, notification_table_name
from lambdas.records import (
    CommandRecord,
    ReadKey,
    read_item_from_command,
    read_key_from_command,
    source_sequence_of,
)

__all__ = ["UnmappableRecordError", "lambda_handler", "processor", "record_handler"]

PUT_CONDITION = (
    "attribute_not_exists(user_id) OR attribute_not_exists(source_sequence)"
    " OR source_sequence < :seq"
)
DELETE_CONDITION = "attribute_not_exists(source_sequence) OR source_sequence < :seq"

logger = Logger(service="stream-processor")
#: Returning every failed record (rather than raising when all fail) lets the event source
#: mapping's retry / bisect / on-failure logic decide, from the lowest failed sequence number.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
_serializer = TypeSerializer()

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


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _is_condition_failure(error: ClientError) -> bool:
    code: object = error.response.get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


def _put(command: CommandRecord, source_sequence: str, sequence: str) -> None:
    """Write the read item unless the table already holds a newer (or this) image."""
    try:
        dynamodb_client().put_item(
            TableName=notification_table_name(),
            Item=_serialize(read_item_from_command(command, source_sequence)),
            ConditionExpression=PUT_CONDITION,
            ExpressionAttributeValues={":seq": {"S": source_sequence}},
        )
    except ClientError as error:
        if not _is_condition_failure(error):
            raise
        logger.info(
            "skipped stream record: the read item already reflects it or a newer one",
            extra={"sequence_number": sequence, "transaction_id": command.transaction_id},
        )
        return
    logger.debug(
        "read item written",
        extra={"sequence_number": sequence, "transaction_id": command.transaction_id},
    )


def _delete(key: ReadKey, source_sequence: str, sequence: str) -> None:
    """Delete the read item unless it was written from a newer stream record."""
    try:
        dynamodb_client().delete_item(
            TableName=notification_table_name(),
            Key=_serialize(key.to_item()),
            ConditionExpression=DELETE_CONDITION,
            ExpressionAttributeValues={":seq": {"S": source_sequence}},
        )
    except ClientError as error:
        if not _is_condition_failure(error):
            raise
        logger.info(
            "skipped delete: the read item comes from a newer stream record",
            extra={"sequence_number": sequence, "user_id": key.user_id},
        )


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
        new_key = read_key_from_command(command)
        if event_name is DynamoDBRecordEventName.MODIFY and "OldImage" in stream.raw_event:
            old_key = _parse(record, "OldImage", ReadKey)
            if old_key != new_key:  # user_id changed: the read key moved
                _delete(old_key, source_sequence, sequence)
        _put(command, source_sequence, sequence)
    else:
        _delete(_parse(record, "OldImage", ReadKey), source_sequence, sequence)


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Process a DynamoDB Streams batch and return the partial batch response.

    One log line per batch says how many records it held and how many failed.
    """
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
