"""Conditional writes to ``notification-records`` that tell a newer image from a key collision.

The read table is keyed (user_id, created_at), so two transactions of one user in the same
millisecond share a read key (issue 18; docs/decisions/0001-read-key-collisions.md). Every write
is conditional on the item being absent or holding the *same* transaction with an older stream
sequence number. When the condition fails, DynamoDB returns the item that failed it
(``ReturnValuesOnConditionCheckFailure=ALL_OLD``), which says which case it was:

- the same transaction, newer or equal ``source_sequence``: a redelivered or older image, skipped;
- another transaction: a collision. A put raises :class:`ReadKeyCollisionError`, so the record is
  reported in ``batchItemFailures`` (retried, then sent to the mapping's on-failure destination);
  a delete leaves the other transaction's item alone (the removed transaction was never shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from lambdas.dynamodb_client import dynamodb_client, notification_table_name
from lambdas.records import ReadKey

__all__ = [
    "DELETE_CONDITION",
    "PUT_CONDITION",
    "Collision",
    "ReadKeyCollisionError",
    "WriteOutcome",
    "WriteResult",
    "conditional_delete",
    "conditional_put",
]

#: Absent, or the same transaction from an older stream record. A legacy item without
#: ``source_sequence`` counts as older.
_SAME_TRANSACTION_OLDER = (
    "(transaction_id = :tx AND (attribute_not_exists(source_sequence) OR source_sequence < :seq))"
)
PUT_CONDITION = f"attribute_not_exists(user_id) OR {_SAME_TRANSACTION_OLDER}"
DELETE_CONDITION = PUT_CONDITION

WriteOutcome = Literal["written", "stale", "collision"]
_ATTEMPTS = 3

logger = Logger(service="stream-processor", child=True)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class Collision:
    """Another transaction holds the read key this stream record's transaction maps to."""

    key: ReadKey
    transaction_id: str
    holder_transaction_id: str

    def describe(self, event_name: str) -> str:
        """One line naming the key and both transactions."""
        return (
            f"read key (user_id={self.key.user_id!r}, created_at={self.key.created_at}) "
            f"holds transaction {self.holder_transaction_id!r}; {event_name} of transaction "
            f"{self.transaction_id!r} not applied"
        )


@dataclass(frozen=True)
class WriteResult:
    """What a conditional write did; ``holder`` is the other transaction on a collision."""

    outcome: WriteOutcome
    holder: str | None = None


def _result_for(holder: str, transaction_id: str) -> WriteResult:
    if holder == transaction_id:
        return WriteResult("stale")
    return WriteResult("collision", holder)


class ReadKeyCollisionError(Exception):
    """An image that cannot be applied because another transaction holds its read key."""

    def __init__(self, collision: Collision, event_name: str, sequence_number: str) -> None:
        super().__init__(f"stream record {sequence_number}: {collision.describe(event_name)}")
        self.collision = collision


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _condition_values(transaction_id: str, source_sequence: str) -> dict[str, Any]:
    return {":tx": {"S": transaction_id}, ":seq": {"S": source_sequence}}


def _holder(error: ClientError, key: ReadKey) -> str | None:
    """The transaction id of the item that failed the condition; None if the item is gone.

    DynamoDB returns that item with the error when asked (``ReturnValuesOnConditionCheckFailure``,
    since 2023), and moto does. DynamoDB Local (under LocalStack) did not, so such a backend is
    asked with a consistent read instead. infra/terraform/iam.tf does not grant that GetItem
    (on AWS it is never called): where IAM is enforced it is AccessDenied, so the record fails
    and is retried, then sent to the on-failure queue: loud, never silent.
    """
    code: object = error.response.get("Error", {}).get("Code")
    if code != "ConditionalCheckFailedException":
        raise error
    item: Any = error.response.get("Item")
    if item is None:
        item = (
            dynamodb_client()
            .get_item(
                TableName=notification_table_name(),
                Key=_serialize(key.to_item()),
                ConsistentRead=True,
            )
            .get("Item")
        )
    if not item:
        return None
    if "transaction_id" not in item:  # every read item has one: never guess whose this is
        raise RuntimeError(f"read item at {key.to_item()} has no transaction_id")
    holder = _deserializer.deserialize(item["transaction_id"])
    return holder if isinstance(holder, str) else str(holder)


def conditional_put(
    key: ReadKey, item: dict[str, Any], transaction_id: str, source_sequence: str
) -> WriteResult:
    """Put the read item unless it already reflects this image or a newer one ('stale').

    Writes nothing and returns 'collision' with the holder when another transaction holds the
    key; the caller reports it.
    """
    for _ in range(_ATTEMPTS):
        try:
            dynamodb_client().put_item(
                TableName=notification_table_name(),
                Item=_serialize(item),
                ConditionExpression=PUT_CONDITION,
                ExpressionAttributeValues=_condition_values(transaction_id, source_sequence),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            holder = _holder(error, key)
            if holder is None:  # the item that failed the condition is gone: try again
                continue
            return _result_for(holder, transaction_id)
        return WriteResult("written")
    raise RuntimeError(
        f"read key {key.to_item()} changed under {_ATTEMPTS} conditional puts in a row"
    )


def conditional_delete(key: ReadKey, transaction_id: str, source_sequence: str) -> WriteResult:
    """Delete the transaction's read item unless it comes from a newer stream record ('stale').

    Deletes nothing and returns 'collision' with the holder when the key holds another
    transaction's item.
    """
    try:
        dynamodb_client().delete_item(
            TableName=notification_table_name(),
            Key=_serialize(key.to_item()),
            ConditionExpression=DELETE_CONDITION,
            ExpressionAttributeValues=_condition_values(transaction_id, source_sequence),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        holder = _holder(error, key)
        if holder is None:  # deleted meanwhile: nothing left to delete
            return WriteResult("written")
        return _result_for(holder, transaction_id)
    return WriteResult("written")
