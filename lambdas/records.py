"""Record models shared by the Lambdas: write-side CommandRecord, read-side QueryRecord."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "SEQUENCE_WIDTH",
    "CommandRecord",
    "Platform",
    "QueryRecord",
    "ReadKey",
    "TransactionReadKey",
    "Status",
    "read_item_from_command",
    "read_key_from_command",
    "source_sequence_of",
]

Status = Literal["SENT", "DELIVERED", "FAILED"]
Platform = Literal["IOS", "ANDROID", "WEBPUSH"]

#: Width of ``source_sequence``: stream sequence numbers are decimal strings of up to 40 digits,
#: so zero-padding them to 40 makes string order equal numeric order in a DynamoDB condition.
SEQUENCE_WIDTH = 40


def _integral(value: Any) -> Any:
    """Turn an integral Decimal (how DynamoDB numbers arrive) into an int; leave anything else."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


class CommandRecord(BaseModel):
    """A write-side record of table ``command-records`` (a sent push notification)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    transaction_id: str = Field(min_length=1)
    created_at: int = Field(ge=0, description="epoch milliseconds")
    user_id: str = Field(min_length=1)
    marketing_id: str | None = Field(default=None, min_length=1)
    ap_id: str | None = None
    notification_title: str
    status: Status
    platform: Platform
    device_token: str
    payload: str = Field(description="the notification payload as a JSON string")
    error_msg: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at_integral(cls, value: Any) -> Any:
        return _integral(value)


class QueryRecord(BaseModel):
    """A read-side record as the API returns it (NotificationRecord): every key always present."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    user_id: str
    created_at: int
    transaction_id: str
    marketing_id: str | None = None
    ap_id: str | None = None
    notification_title: str
    status: Status
    platform: Platform
    error_msg: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at_integral(cls, value: Any) -> Any:
        return _integral(value)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> QueryRecord:
        """Build from a deserialized ``notification-records`` item (internal attributes dropped)."""
        return cls.model_validate(item)

    def to_wire(self) -> dict[str, Any]:
        """Return the NotificationRecord JSON object, absent values as null."""
        return self.model_dump(mode="json")


class ReadKey(BaseModel):
    """The ``notification-records`` key of a command record: (user_id, created_at)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    user_id: str = Field(min_length=1)
    created_at: int = Field(ge=0)

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at_integral(cls, value: Any) -> Any:
        return _integral(value)

    def to_item(self) -> dict[str, Any]:
        """Return the key as a plain item (user_id, created_at)."""
        return {"user_id": self.user_id, "created_at": self.created_at}


class TransactionReadKey(ReadKey):
    """A read key with the transaction an image maps to it (what a REMOVE needs of OldImage)."""

    transaction_id: str = Field(min_length=1)

    def read_key(self) -> ReadKey:
        """Return the bare (user_id, created_at) key."""
        return ReadKey(user_id=self.user_id, created_at=self.created_at)


def source_sequence_of(sequence_number: str) -> str:
    """Return the stream sequence number zero-padded to 40 digits (raise ValueError if not one)."""
    if not sequence_number.isascii() or not sequence_number.isdigit():
        raise ValueError(f"SequenceNumber {sequence_number!r} is not a decimal string")
    if len(sequence_number) > SEQUENCE_WIDTH:
        raise ValueError(
            f"SequenceNumber {sequence_number!r} has more than {SEQUENCE_WIDTH} digits"
        )
    return sequence_number.zfill(SEQUENCE_WIDTH)


def read_key_from_command(record: CommandRecord) -> ReadKey:
    """Return the ``notification-records`` key (user_id, created_at) of a command record."""
    return ReadKey(user_id=record.user_id, created_at=record.created_at)


def read_item_from_command(record: CommandRecord, source_sequence: str) -> dict[str, Any]:
    """Map a command record to its read-side item; null attributes are omitted, not NULL."""
    item: dict[str, Any] = {
        "user_id": record.user_id,
        "created_at": record.created_at,
        "transaction_id": record.transaction_id,
        "marketing_id": record.marketing_id,
        "ap_id": record.ap_id,
        "notification_title": record.notification_title,
        "status": record.status,
        "platform": record.platform,
        "error_msg": record.error_msg,
        "source_sequence": source_sequence,
    }
    return {name: value for name, value in item.items() if value is not None}
