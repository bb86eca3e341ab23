"""Each moto defect of reference/moto.md shown gone through boto3.

The tripwires are in test_moto_tripwires.py; the fast paths' answers against moto's own code in
test_moto_fast_paths.py. Fixtures: conftest.py; shared helpers: moto_tables.py.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.aws.responses import ShardIteratorStore
from tests.harness.aws import moto_tables
from tests.harness.aws.moto_tables import NO_RETRY

# ---- 1: Query cost -------------------------------------------------------------------------


def test_query_base_table_looks_only_at_its_partition(
    dynamodb: Any, table: str, all_items_sizes: list[int]
) -> None:
    moto_tables.load(dynamodb, table, 600)
    all_items_sizes.clear()
    found = moto_tables.query(dynamodb, table, None, "user_id", "u7", ScanIndexForward=False)
    looked_at = list(all_items_sizes)
    assert found == sorted(moto_tables.scan_oracle(dynamodb, table, "user_id", "u7"), reverse=True)
    assert len(found) == 20
    assert looked_at == [20]


def test_query_gsi_looks_only_at_its_partition(
    dynamodb: Any, table: str, all_items_sizes: list[int]
) -> None:
    moto_tables.load(dynamodb, table, 600)
    moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", "m3")  # builds the index
    all_items_sizes.clear()
    found = moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", "m3")
    looked_at = list(all_items_sizes)
    assert found == moto_tables.scan_oracle(dynamodb, table, "marketing_id", "m3")
    assert looked_at == [len(found)]


def test_query_gsi_follows_updates_moves_deletes_and_pages(dynamodb: Any, table: str) -> None:
    moto_tables.load(dynamodb, table, 200)
    for value in ("m1", "m2", "m3"):  # each partition's order is kept until it changes
        moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", value)
    dynamodb.update_item(
        TableName=table,
        Key=moto_tables.item(1, 1, None),
        UpdateExpression="SET marketing_id = :m",
        ExpressionAttributeValues={":m": {"S": "m2"}},
    )
    dynamodb.update_item(
        TableName=table, Key=moto_tables.item(8, 8, None), UpdateExpression="REMOVE marketing_id"
    )
    dynamodb.delete_item(TableName=table, Key=moto_tables.item(15, 15, None))
    dynamodb.put_item(TableName=table, Item=moto_tables.item(9, 9000, 2))
    dynamodb.update_item(
        TableName=table,
        Key=moto_tables.item(99, 99, None),
        UpdateExpression="SET marketing_id = :m",
        ExpressionAttributeValues={":m": {"S": "m2"}},
    )
    with pytest.raises(ClientError):  # a cancelled transaction must not leave its writes indexed
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": moto_tables.item(5, 5000, 2)}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": moto_tables.item(5, 5, None),
                        "ConditionExpression": "attribute_not_exists(user_id)",
                    }
                },
            ]
        )
    for value in ("m1", "m2", "m3"):
        expected = moto_tables.scan_oracle(dynamodb, table, "marketing_id", value)
        assert (
            moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", value, Limit=7)
            == expected
        )
    assert 5000 not in moto_tables.scan_oracle(dynamodb, table, "marketing_id", "m2")


def test_query_gsi_added_by_update_table_answers(dynamodb: Any, table: str) -> None:
    moto_tables.load(dynamodb, table, 60)
    moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", "m1")
    dynamodb.update_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-user",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}],
                }
            }
        ],
    )
    assert sorted(moto_tables.query(dynamodb, table, "by-user", "user_id", "u3")) == [3, 33]


# ---- 2: serialized writes ------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import boto3, sys
    client = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="ap-southeast-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for i in range(int(sys.argv[3])):
        client.update_item(TableName=sys.argv[2],
                           Key={"user_id": {"S": "u"}, "created_at": {"N": "1"}},
                           UpdateExpression="ADD hits :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})
""")


def test_update_item_from_two_processes_loses_nothing(
    endpoint: Any, dynamodb: Any, table: str
) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, endpoint.url, table, "300"])
        for _ in range(2)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    key = {"user_id": {"S": "u"}, "created_at": {"N": "1"}}
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["hits"] == {"N": "600"}


# ---- 3: JSON errors instead of HTML 500s ---------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        {
            "op": "scan",
            "FilterExpression": "x = :w",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
        {
            "op": "scan",
            "FilterExpression": "#n = :v",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
        {
            "op": "query",
            "KeyConditionExpression": "user_id = :v AND AND created_at = :v",
            "ExpressionAttributeValues": {":v": {"S": "a"}},
        },
        {
            "op": "put_item",
            "Item": {"user_id": {"S": "u"}, "created_at": {"N": "1"}},
            "ConditionExpression": "#n = :v",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
        {
            "op": "delete_item",
            "Key": {"user_id": {"S": "u"}, "created_at": {"N": "1"}},
            "ConditionExpression": "x = :w",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
    ],
)
def test_malformed_expression_answers_validation_exception(
    dynamodb: Any, table: str, call: dict[str, Any]
) -> None:
    args = dict(call)
    with pytest.raises(ClientError) as caught:
        getattr(dynamodb, args.pop("op"))(TableName=table, **args)
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "html" not in error["Error"]["Message"].lower()


def _error_code(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return (
        caught.value.response["Error"]["Code"],
        caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_bad_stream_requests_answer_aws_errors(dynamodb: Any, streams: Any, table: str) -> None:
    arn, shard = moto_tables.stream(dynamodb, streams, table)
    assert _error_code(lambda: streams.get_records(ShardIterator="not-an-iterator")) == (
        "ValidationException",
        400,
    )
    assert _error_code(lambda: streams.get_records(ShardIterator=f"{arn}|1|{'A' * 40}")) == (
        "ExpiredIteratorException",
        400,
    )
    assert _error_code(
        lambda: streams.get_shard_iterator(
            StreamArn=arn,
            ShardId="shardId-00000000000000000000-00000000",
            ShardIteratorType="LATEST",
        )
    ) == ("ResourceNotFoundException", 400)
    assert _error_code(
        lambda: streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber="100000000000000000005",
        )
    ) == ("TrimmedDataAccessException", 400)


def test_unimplemented_action_answers_json_internal_error(aws_client_factory: Any) -> None:
    logs = aws_client_factory("logs", config=NO_RETRY)
    with pytest.raises(ClientError) as caught:
        logs.associate_kms_key(logGroupName="g", kmsKeyId="k")
    response = caught.value.response
    assert response["Error"]["Code"] == "InternalServerError"
    assert "not been implemented" in response["Error"]["Message"]
    assert "json" in response["ResponseMetadata"]["HTTPHeaders"]["content-type"]


# ---- 4: stream records ---------------------------------------------------------------------


def test_stream_records_carry_region_arn_and_no_spurious_events(
    endpoint: Any, dynamodb: Any, streams: Any, table: str
) -> None:
    arn, shard = moto_tables.stream(dynamodb, streams, table)
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    key = moto_tables.item(1, 1, None)
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "hello"}},
    )
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "hello"}},
    )  # changes nothing
    dynamodb.put_item(TableName=table, Item=key | {"title": {"S": "hello"}})  # changes nothing
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "bye"}},
    )
    records = moto_tables.raw_records(endpoint, iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    assert records[0]["dynamodb"]["NewImage"]["title"] == {"S": "hello"}
    assert records[1]["dynamodb"]["OldImage"]["title"] == {"S": "hello"}
    assert records[1]["dynamodb"]["NewImage"]["title"] == {"S": "bye"}
    assert {r["awsRegion"] for r in records} == {"ap-southeast-1"}
    assert {r["eventSourceARN"] for r in records} == {arn}


def test_stream_records_region_follows_table_region(aws_client_factory: Any) -> None:
    dynamodb = aws_client_factory("dynamodb", region="eu-west-1")
    streams = aws_client_factory("dynamodbstreams", region="eu-west-1")
    name = f"t-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    dynamodb.put_item(TableName=name, Item={"k": {"S": "1"}})
    arn, shard = moto_tables.stream(dynamodb, streams, name)
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["awsRegion"] for r in streams.get_records(ShardIterator=iterator)["Records"]] == [
        "eu-west-1"
    ]


# ---- 5: bounded iterators ------------------------------------------------------------------


def test_get_records_iterators_are_bounded_and_expire(
    dynamodb: Any, streams: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ShardIteratorStore, "max_entries", 20)
    arn, shard = moto_tables.stream(dynamodb, streams, table)
    first = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    for _ in range(25):
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST"
        )["ShardIterator"]
    assert (
        _error_code(lambda: streams.get_records(ShardIterator=first))[0]
        == "ExpiredIteratorException"
    )
    dynamodb.put_item(TableName=table, Item=moto_tables.item(1, 1, 1))
    assert len(streams.get_records(ShardIterator=iterator)["Records"]) == 1
    monkeypatch.setattr(ShardIteratorStore, "ttl_s", -1.0)
    assert (
        _error_code(lambda: streams.get_records(ShardIterator=iterator))[0]
        == "ExpiredIteratorException"
    )


def test_an_empty_read_answers_the_iterator_it_read(
    dynamodb: Any, streams: Any, table: str
) -> None:
    """An idle poller's reads make no new iterators (each ~1.4 KB, kept 15 minutes)."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    arn, shard = moto_tables.stream(dynamodb, streams, table)
    store = dynamodbstreams_backends["123456789012"]["eu-west-1"].shard_iterators
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    kept = len(store)
    for _ in range(5):
        page = streams.get_records(ShardIterator=iterator)
        assert page["Records"] == [] and page["NextShardIterator"] == iterator
    assert len(store) == kept
    dynamodb.put_item(TableName=table, Item=moto_tables.item(1, 1, 1))
    page = streams.get_records(ShardIterator=iterator)
    assert len(page["Records"]) == 1 and page["NextShardIterator"] != iterator
    after = streams.get_records(ShardIterator=page["NextShardIterator"])
    assert after["Records"] == [] and after["NextShardIterator"] == page["NextShardIterator"]
    assert len(streams.get_records(ShardIterator=iterator)["Records"]) == 1  # still readable


def test_requests_leave_no_tracked_dynamodb_objects_behind(
    dynamodb: Any, streams: Any, table: str
) -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodbstreams.models import ShardIterator

    moto_tables.load(dynamodb, table, 50)
    arn, shard = moto_tables.stream(dynamodb, streams, table)
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    for _ in range(20):
        moto_tables.query(dynamodb, table, "marketing_id-index", "marketing_id", "m1")
        iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
    assert Item.instances_tracked == [] and ShardIterator.instances_tracked == []


def test_requests_create_no_classes(dynamodb: Any, streams: Any, table: str) -> None:
    """moto's Flask apps run in debug mode, where Flask made a class per request (the enctype
    helper of request.files); those classes die only in a cyclic GC pass and fragmented the
    heap: RSS grew ~4 MB a minute while idle GetRecords polling."""
    arn, shard = moto_tables.stream(dynamodb, streams, table)
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    key = {"user_id": {"S": "u1"}, "created_at": {"N": "1"}}

    def poll(times: int) -> None:
        nonlocal iterator
        for _ in range(times):
            iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
            dynamodb.get_item(TableName=table, Key=key)

    poll(3)  # whatever the first calls build once
    gc.collect()
    gc.disable()  # a class lives in a reference cycle: without a GC pass, every one stays visible
    try:
        before = [o for o in gc.get_objects() if isinstance(o, type)]
        known = {id(o) for o in before}
        poll(20)
        made = [
            f"{o.__module__}.{o.__qualname__}"
            for o in gc.get_objects()
            if isinstance(o, type) and id(o) not in known
        ]
    finally:
        gc.enable()
    assert made == []


# ---- 6: managed policies -------------------------------------------------------------------


def test_aws_managed_policy_exists_and_attaches(aws_client_factory: Any) -> None:
    iam = aws_client_factory("iam")
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PolicyName"] == "AWSLambdaBasicExecutionRole"
    role = f"r-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
