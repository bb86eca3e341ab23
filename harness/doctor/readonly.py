"""A botocore hook that refuses every operation that could change anything.

Doctor asks questions only: Describe*, List*, Get*, Filter*, Query, Scan, BatchGet*, Lookup*.
The one exception is peeking at the on-failure queue's oldest message, which SQS can only do with
ReceiveMessage; with ``VisibilityTimeout=0`` the message stays visible to every other consumer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["READ_PREFIXES", "MutatingCallRefused", "guard", "is_read_only"]

READ_PREFIXES = ("Describe", "List", "Get", "Filter", "Query", "Scan", "BatchGet", "Lookup")


class MutatingCallRefused(RuntimeError):
    """Doctor tried an operation that is not read-only (a bug in a check, never a finding)."""


def is_read_only(service: str, operation: str, params: dict[str, Any]) -> bool:
    """Whether the call only reads."""
    if operation.startswith(READ_PREFIXES):
        return True
    # The allow-list: a peek that leaves the message visible to everyone else.
    return (
        service == "sqs" and operation == "ReceiveMessage" and params.get("VisibilityTimeout") == 0
    )


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["doctor_params"] = dict(params)


def _refuse(model: Any, context: dict[str, Any], **_: Any) -> None:
    given = context.get("doctor_params", {})
    service = model.service_model.service_name
    if not is_read_only(service, model.name, given):
        raise MutatingCallRefused(f"doctor is read-only: refused {service}:{model.name}")


def guard(client: Any) -> Any:
    """Make ``client`` refuse every non-read operation before anything is sent; returns it."""
    events = client.meta.events
    events.register("provide-client-params", _keep_params)
    events.register("before-call", _refuse)
    return client
