"""``GET /moto-api/data.json`` with DynamoDB's tables and items, read from the live backends.

moto's dashboard data comes from a class-level list of every model instance ever made. The
patches (harness.aws.patches, 5) stop that list for DynamoDB and DynamoDB Streams: it held every
item copy a Query returned and every shard iterator, forever. Here the DynamoDB part is built
on demand instead, from the tables that exist now: tables as moto lists them (their JSON-able
public attributes), and one entry per stored item (moto's entries had only ``range_key``).
The other services are listed as moto lists them, except that an attribute that fails to read
is left out whatever it raises: moto's own handler crashes on every Lambda function without
Docker (its ``docker_client`` property), which is never read here.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["data_json", "dynamodb_models"]

#: Attributes never read: reading them has effects (a Docker client, a socket).
_SKIPPED = frozenset({"docker_client"})


def _public_json(instance: Any) -> dict[str, Any]:
    """The JSON-able public attributes of ``instance`` (what moto's data.json shows)."""
    shown: dict[str, Any] = {}
    for name in dir(instance):
        if name.startswith("_") or name in _SKIPPED:
            continue
        try:
            value = getattr(instance, name)
            json.dumps(value)
        except Exception:  # noqa: BLE001 - moto skips what does not serialise, so do we
            continue
        shown[name] = value
    return shown


def _items(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())


def dynamodb_models() -> dict[str, list[dict[str, Any]]]:
    """``{"Table": [...], "Item": [...]}`` for every table of every account and region."""
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415
    from moto.dynamodb.models.utilities import dynamo_json_dump  # noqa: PLC0415

    from harness.aws.patches import DYNAMODB_LOCK  # noqa: PLC0415

    tables: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    with DYNAMODB_LOCK:
        backends: Any = dynamodb_backends.iter_backends()
        for account_id, region, backend in backends:
            for table in list(backend.tables.values()):
                tables.append(_public_json(table))
                for item in _items(table):
                    items.append(
                        {
                            "account_id": account_id,
                            "region_name": region,
                            "table_name": table.name,
                            "hash_key": item.hash_key.to_json(),
                            "range_key": (
                                item.range_key.to_json() if item.range_key is not None else None
                            ),
                            "attrs": item.to_json()["Attributes"],
                        }
                    )
        items = json.loads(dynamo_json_dump(items))  # nested values may still be DynamoTypes
    return {"Table": tables, "Item": items}


def data_json() -> bytes:
    """The document moto's ``/moto-api/data.json`` answers, DynamoDB filled in from the tables."""
    from moto.core.model_instances import model_data  # noqa: PLC0415

    document: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for service in sorted(model_data):
        models = model_data[service]
        document[service] = {
            name: [_public_json(instance)
                   for instance in list(models[name].instances_tracked)]  # type: ignore[attr-defined]
            for name in sorted(models)
        }
    document.setdefault("dynamodb", {}).update(dynamodb_models())
    return json.dumps(document).encode()
