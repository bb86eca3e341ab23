"""Tripwires: fail loudly when a moto upgrade moves what harness/aws/patches.py relies on."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from harness.aws import patches as moto_patches
from harness.aws.responses import ShardIteratorStore


def test_tripwire_moto_version_is_the_pinned_one() -> None:
    import moto

    assert moto_patches.MOTO_VERSION == "5.2.5"
    assert moto.__version__ == moto_patches.MOTO_VERSION, (
        "moto changed: re-check every patch in harness/aws/patches.py before moving the pin"
    )


def test_tripwire_patched_internals_keep_their_signatures(endpoint: Any) -> None:
    moto_patches.verify_internals()
    read_only = {
        "moto.dynamodbstreams.models:ShardIterator.get",
        "moto.dynamodb.models.utilities:dynamo_json_dump",
        "moto.dynamodb.models.utilities:dynamo_to_dict",
        "moto.dynamodb.models.table:Table._generate_attr_to_sort_by",
        "moto.core.base_backend:BaseBackend.reset",
    }
    for dotted in set(moto_patches.INTERNALS) - read_only:
        assert hasattr(moto_patches._resolve(dotted), "__wrapped_by_harness__"), (
            f"{dotted} unpatched"
        )


def test_tripwire_changed_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "moto.dynamodb.models.table:Table.query"
    monkeypatch.setitem(moto_patches.INTERNALS, key, "self hash_key")
    with pytest.raises(moto_patches.MotoPatchError, match="Table.query"):
        moto_patches.verify_internals()


def test_tripwire_moto_model_shapes_the_patches_read(endpoint: Any) -> None:
    from collections import defaultdict

    from moto.dynamodb.models.table import StreamShard, Table
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    table = Table(
        "t",
        account_id="123456789012",
        region="eu-west-1",
        schema=[{"AttributeName": "k", "KeyType": "HASH"}],
        attr=[{"AttributeName": "k", "AttributeType": "S"}],
        streams={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        global_indexes=[],
    )
    assert isinstance(table.items, defaultdict)
    assert (table.region_name, table.hash_key_attr, table.range_key_attr) == (
        "eu-west-1",
        "k",
        None,
    )
    assert table.table_arn.startswith("arn:aws:dynamodb:eu-west-1:") and table.latest_stream_label
    assert isinstance(table.stream_shard, StreamShard)
    assert isinstance(table.stream_shard.starting_sequence_number, int)
    assert isinstance(
        DynamoDBStreamsBackend("eu-west-1", "123456789012").shard_iterators,
        ShardIteratorStore,
    )
    assert (
        "transact_items"
        in inspect.signature(
            __import__(
                "moto.dynamodb.models", fromlist=["DynamoDBBackend"]
            ).DynamoDBBackend.transact_write_items
        ).parameters
    )
