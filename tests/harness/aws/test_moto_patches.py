"""Each moto defect of reference/moto.md shown gone through boto3, plus tripwires."""

from __future__ import annotations

import gc
import inspect
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.aws import patches as moto_patches
from harness.aws.responses import ShardIteratorStore

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture()
def dynamodb(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("dynamodb", config=NO_RETRY)


@pytest.fixture()
def streams(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("dynamodbstreams", config=NO_RETRY)


@pytest.fixture()
def table(dynamodb: Any) -> Iterator[str]:
    """Like notification-records: user_id + created_at, GSI on marketing_id, a stream."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
            {"AttributeName": "marketing_id", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "marketing_id-index",
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "marketing_id", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield name
    dynamodb.delete_table(TableName=name)


def _item(user: int, created: int, marketing: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"user_id": {"S": f"u{user}"}, "created_at": {"N": str(created)}}
    if marketing is not None:
        item["marketing_id"] = {"S": f"m{marketing}"}
    return item


def _load(dynamodb: Any, table: str, count: int) -> None:
    items = [_item(i % 30, i, i % 7 if i % 5 else None) for i in range(count)]
    for start in range(0, count, 25):
        dynamodb.batch_write_item(
            RequestItems={
                table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            }
        )


def _query(
    dynamodb: Any, table: str, index: str | None, attr: str, value: str, **kwargs: Any
) -> list[int]:
    args: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": attr},
        "ExpressionAttributeValues": {":v": {"S": value}},
        **kwargs,
    }
    if index:
        args["IndexName"] = index
    created: list[int] = []
    while True:
        page = dynamodb.query(**args)
        created += [int(item["created_at"]["N"]) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return created
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _scan_oracle(dynamodb: Any, table: str, attr: str, value: str) -> list[int]:
    items = dynamodb.scan(TableName=table)["Items"]
    return sorted(int(i["created_at"]["N"]) for i in items if i.get(attr, {}).get("S") == value)


@pytest.fixture()
def all_items_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many items each moto Table.all_items() call hands to a Query."""
    from moto.dynamodb.models.table import Table

    sizes: list[int] = []
    patched = Table.all_items

    def spy(self: Any) -> Any:
        result = patched(self)
        sizes.append(len(result))
        return result

    monkeypatch.setattr(Table, "all_items", spy)
    return sizes


# ---- 1: Query cost -------------------------------------------------------------------------


def test_query_base_table_looks_only_at_its_partition(
    dynamodb: Any, table: str, all_items_sizes: list[int]
) -> None:
    _load(dynamodb, table, 600)
    all_items_sizes.clear()
    found = _query(dynamodb, table, None, "user_id", "u7", ScanIndexForward=False)
    looked_at = list(all_items_sizes)
    assert found == sorted(_scan_oracle(dynamodb, table, "user_id", "u7"), reverse=True)
    assert len(found) == 20
    assert looked_at == [20]


def test_query_gsi_looks_only_at_its_partition(
    dynamodb: Any, table: str, all_items_sizes: list[int]
) -> None:
    _load(dynamodb, table, 600)
    _query(dynamodb, table, "marketing_id-index", "marketing_id", "m3")  # builds the index
    all_items_sizes.clear()
    found = _query(dynamodb, table, "marketing_id-index", "marketing_id", "m3")
    looked_at = list(all_items_sizes)
    assert found == _scan_oracle(dynamodb, table, "marketing_id", "m3")
    assert looked_at == [len(found)]


def test_query_gsi_follows_updates_moves_deletes_and_pages(dynamodb: Any, table: str) -> None:
    _load(dynamodb, table, 200)
    for value in ("m1", "m2", "m3"):  # each partition's order is kept until it changes
        _query(dynamodb, table, "marketing_id-index", "marketing_id", value)
    dynamodb.update_item(
        TableName=table,
        Key=_item(1, 1, None),
        UpdateExpression="SET marketing_id = :m",
        ExpressionAttributeValues={":m": {"S": "m2"}},
    )
    dynamodb.update_item(
        TableName=table, Key=_item(8, 8, None), UpdateExpression="REMOVE marketing_id"
    )
    dynamodb.delete_item(TableName=table, Key=_item(15, 15, None))
    dynamodb.put_item(TableName=table, Item=_item(9, 9000, 2))
    dynamodb.update_item(
        TableName=table,
        Key=_item(99, 99, None),
        UpdateExpression="SET marketing_id = :m",
        ExpressionAttributeValues={":m": {"S": "m2"}},
    )
    with pytest.raises(ClientError):  # a cancelled transaction must not leave its writes indexed
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _item(5, 5000, 2)}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": _item(5, 5, None),
                        "ConditionExpression": "attribute_not_exists(user_id)",
                    }
                },
            ]
        )
    for value in ("m1", "m2", "m3"):
        expected = _scan_oracle(dynamodb, table, "marketing_id", value)
        assert (
            _query(dynamodb, table, "marketing_id-index", "marketing_id", value, Limit=7)
            == expected
        )
    assert 5000 not in _scan_oracle(dynamodb, table, "marketing_id", "m2")


def test_query_gsi_added_by_update_table_answers(dynamodb: Any, table: str) -> None:
    _load(dynamodb, table, 60)
    _query(dynamodb, table, "marketing_id-index", "marketing_id", "m1")
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
    assert sorted(_query(dynamodb, table, "by-user", "user_id", "u3")) == [3, 33]


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


def _stream(dynamodb: Any, streams: Any, table: str) -> tuple[str, str]:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return arn, shard


def _error_code(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return (
        caught.value.response["Error"]["Code"],
        caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_bad_stream_requests_answer_aws_errors(dynamodb: Any, streams: Any, table: str) -> None:
    arn, shard = _stream(dynamodb, streams, table)
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


def _raw_records(endpoint: Any, iterator: str) -> dict[str, Any]:
    """GetRecords without botocore's parsing, which drops fields the API model does not list."""
    response = httpx.post(
        endpoint.url,
        content=json.dumps({"ShardIterator": iterator}),
        headers={
            "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/ap-southeast-1/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_stream_records_carry_region_arn_and_no_spurious_events(
    endpoint: Any, dynamodb: Any, streams: Any, table: str
) -> None:
    arn, shard = _stream(dynamodb, streams, table)
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    key = _item(1, 1, None)
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
    records = _raw_records(endpoint, iterator)["Records"]
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
    arn, shard = _stream(dynamodb, streams, name)
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
    arn, shard = _stream(dynamodb, streams, table)
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
    dynamodb.put_item(TableName=table, Item=_item(1, 1, 1))
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

    arn, shard = _stream(dynamodb, streams, table)
    store = dynamodbstreams_backends["123456789012"]["eu-west-1"].shard_iterators
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    kept = len(store)
    for _ in range(5):
        page = streams.get_records(ShardIterator=iterator)
        assert page["Records"] == [] and page["NextShardIterator"] == iterator
    assert len(store) == kept
    dynamodb.put_item(TableName=table, Item=_item(1, 1, 1))
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

    _load(dynamodb, table, 50)
    arn, shard = _stream(dynamodb, streams, table)
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    for _ in range(20):
        _query(dynamodb, table, "marketing_id-index", "marketing_id", "m1")
        iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
    assert Item.instances_tracked == [] and ShardIterator.instances_tracked == []


def test_requests_create_no_classes(dynamodb: Any, streams: Any, table: str) -> None:
    """moto's Flask apps run in debug mode, where Flask made a class per request (the enctype
    helper of request.files); those classes die only in a cyclic GC pass and fragmented the
    heap: RSS grew ~4 MB a minute while idle GetRecords polling."""
    arn, shard = _stream(dynamodb, streams, table)
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


# ---- tripwires: fail loudly when a moto upgrade moves what the patches rely on -------------


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


def test_query_answer_keeps_every_attribute_type(aws_client_factory: Any) -> None:
    """The fast conversion of flat items must give what moto's own conversion gives, nested too."""
    client = aws_client_factory("dynamodb")
    client.create_table(
        TableName="fast-result-types", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    flat = {"pk": {"S": "flat"}, "n": {"N": "1.5"}, "b": {"BOOL": True}, "z": {"NULL": True},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}}
    nested = {"pk": {"S": "nested"}, "m": {"M": {"k": {"S": "v"}, "l": {"L": [{"N": "3"}]}}},
              "bin": {"B": b"\x00\x01"}}
    for item in (flat, nested):
        client.put_item(TableName="fast-result-types", Item=item)
    for item in (flat, nested):
        key = {"pk": item["pk"]}
        got = client.get_item(TableName="fast-result-types", Key=key)["Item"]
        queried = client.query(TableName="fast-result-types", KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": item["pk"]})["Items"]
        for answer in (got, *queried):
            assert {k: (sorted(v["SS"]) if "SS" in v else sorted(v["NS"]) if "NS" in v else v)
                    for k, v in answer.items()} == \
                   {k: (sorted(v["SS"]) if "SS" in v else sorted(v["NS"]) if "NS" in v else v)
                    for k, v in item.items()}


def test_query_results_without_copy_leave_stored_items_intact(aws_client_factory: Any) -> None:
    """Query skips moto's deep copy only when nothing rewrites the items; projections still work."""
    client = aws_client_factory("dynamodb")
    client.create_table(
        TableName="shallow-results", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t}
                              for a, t in (("pk", "S"), ("sk", "N"), ("g", "S"))],
        GlobalSecondaryIndexes=[
            {"IndexName": "all", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "keys", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
        ],
    )
    item = {"pk": {"S": "p"}, "sk": {"N": "1"}, "g": {"S": "x"}, "m": {"M": {"a": {"L": [{"S": "v"}]}}}}
    client.put_item(TableName="shallow-results", Item=item)
    query = {"TableName": "shallow-results", "KeyConditionExpression": "g = :g",
             "ExpressionAttributeValues": {":g": {"S": "x"}}}
    assert client.query(IndexName="keys", **query)["Items"] == [{"pk": {"S": "p"}, "sk": {"N": "1"}, "g": {"S": "x"}}]
    projected = client.query(IndexName="all", ProjectionExpression="m.a", **query)["Items"]
    assert projected == [{"m": {"M": {"a": {"L": [{"S": "v"}]}}}}]
    for _ in range(2):
        assert client.query(IndexName="all", **query)["Items"] == [item]
        assert client.get_item(TableName="shallow-results", Key={"pk": item["pk"], "sk": item["sk"]})["Item"] == item


def test_item_size_is_what_moto_computes_for_every_attribute_type(
    aws_client_factory: Any,
) -> None:
    """The direct size must equal moto's (it decides where a 1 MB page ends), through the API."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import Item

    moto_size = Item.size.__wrapped_by_harness__  # type: ignore[attr-defined]
    client = aws_client_factory("dynamodb")
    name = f"sizes-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    items = [
        {"pk": {"S": "flat"}, "n": {"N": "-12.500"}, "t": {"BOOL": False}, "z": {"NULL": True}},
        {"pk": {"S": "ünïcødé ✓"}, "ß": {"S": "€uro"}, "e": {"S": "x" * 1000}},
        {"pk": {"S": "sets"}, "ss": {"SS": ["a", "bé"]}, "ns": {"NS": ["1", "2.25", "-3"]},
         "bs": {"BS": [b"\x00\x01", b"\xff"]}},
        {"pk": {"S": "binary"}, "b": {"B": b"\x00" * 37}},
        {"pk": {"S": "nested"}, "m": {"M": {"k": {"S": "v"}, "l": {"L": [{"N": "3"}, {"M": {
            "deep": {"SS": ["x"]}, "flag": {"BOOL": True}}}]}, "nul": {"NULL": True}}},
         "l": {"L": []}, "em": {"M": {}}},
    ]
    for item in items:
        client.put_item(TableName=name, Item=item)
    table = dynamodb_backends["123456789012"]["ap-southeast-1"].tables[name]
    stored = list(table.all_items())
    assert len(stored) == len(items)
    for item in stored:
        assert item.size() == moto_size(item) > 0, item.attrs["pk"]


def test_per_request_lookups_are_made_once(dynamodb: Any, table: str) -> None:
    """moto listed its package directories from disk (twice) and ran inspect.getmembers on the
    response class for every request; each is now computed once and answers the same."""
    import moto.backends
    import moto.core.responses
    from moto.dynamodb.responses import DynamoHandler

    modules = moto.backends.list_of_moto_modules
    names = moto.core.responses.method_names_from_class
    assert list(modules()) == list(modules.__wrapped_by_harness__())  # type: ignore[attr-defined]
    assert "dynamodb" in modules() and modules() is modules()
    assert names(DynamoHandler) == names.__wrapped_by_harness__(DynamoHandler)  # type: ignore[attr-defined]
    assert names(DynamoHandler) is names(DynamoHandler) and "query" in names(DynamoHandler)
    dynamodb.describe_table(TableName=table)  # requests still dispatch through them


def test_query_with_a_limit_hands_moto_only_the_items_it_can_reach(
    dynamodb: Any, table: str, all_items_sizes: list[int]
) -> None:
    """Limit + 1 items (the +1 makes LastEvaluatedKey), from the end the Query starts at; pages
    after the first (ExclusiveStartKey) and sort-key conditions still see the whole partition."""
    _load(dynamodb, table, 600)
    for index, attr, value in ((None, "user_id", "u7"), ("marketing_id-index", "marketing_id", "m3")):
        oracle = _scan_oracle(dynamodb, table, attr, value)
        for forward in (True, False):
            expected = oracle if forward else oracle[::-1]
            all_items_sizes.clear()
            assert _query(dynamodb, table, index, attr, value, Limit=4,
                          ScanIndexForward=forward) == expected
            assert all_items_sizes[0] == 5  # the first page: Limit + 1
            assert len(all_items_sizes) > 2 and max(all_items_sizes) == len(oracle)
    ranged = dynamodb.query(
        TableName=table, KeyConditionExpression="user_id = :u AND created_at > :c",
        ExpressionAttributeValues={":u": {"S": "u7"}, ":c": {"N": "300"}}, Limit=3,
    )
    assert [int(i["created_at"]["N"]) for i in ranged["Items"]] == [307, 337, 367]


def test_query_with_a_limit_skips_items_without_the_gsi_range_key(dynamodb: Any) -> None:
    name = f"sparse-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t}
                              for a, t in (("pk", "S"), ("g", "S"), ("r", "N"))],
        GlobalSecondaryIndexes=[{
            "IndexName": "g-r", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                          {"AttributeName": "r", "KeyType": "RANGE"}]}],
    )
    for i in range(20):
        item = {"pk": {"S": f"p{i}"}, "g": {"S": "G"}}
        if i % 2:
            item["r"] = {"N": str(i)}  # the even ones are not in the GSI
        dynamodb.put_item(TableName=name, Item=item)
    for forward in (True, False):
        page = dynamodb.query(TableName=name, IndexName="g-r", KeyConditionExpression="g = :g",
                              ExpressionAttributeValues={":g": {"S": "G"}}, Limit=4,
                              ScanIndexForward=forward)
        got = [int(i["r"]["N"]) for i in page["Items"]]
        assert got == ([1, 3, 5, 7] if forward else [19, 17, 15, 13])
        assert "LastEvaluatedKey" in page
    dynamodb.delete_table(TableName=name)


def test_item_size_kept_across_queries_follows_update_item(aws_client_factory: Any) -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import Item

    moto_size = Item.size.__wrapped_by_harness__  # type: ignore[attr-defined]
    client = aws_client_factory("dynamodb")
    name = f"sizes-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    client.put_item(TableName=name, Item={"pk": {"S": "a"}, "m": {"M": {"x": {"S": "1"}}}})
    query = {"TableName": name, "KeyConditionExpression": "pk = :p",
             "ExpressionAttributeValues": {":p": {"S": "a"}}}
    client.query(**query)  # sizes the item
    client.update_item(TableName=name, Key={"pk": {"S": "a"}}, UpdateExpression="SET m.y = :v",
                       ExpressionAttributeValues={":v": {"S": "y" * 500}})
    client.transact_write_items(TransactItems=[{"Update": {
        "TableName": name, "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET m.z = :v",
        "ExpressionAttributeValues": {":v": {"S": "z" * 300}}}}])
    client.query(**query)
    (item,) = dynamodb_backends["123456789012"]["ap-southeast-1"].tables[name].all_items()
    assert item.size() == moto_size(item) > 800
    client.delete_table(TableName=name)


def test_condition_tokens_kept_per_text_still_decide_per_request(dynamodb: Any, table: str) -> None:
    condition = "attribute_not_exists(#u) OR (#m = :m AND created_at < :c)"
    key = _item(1, 1, 4)
    for marketing, limit, lands in (("m4", "0", True), ("m4", "1", False), ("m9", "9", False),
                                    ("m4", "9", True)):
        call = lambda m=marketing, c=limit: dynamodb.put_item(  # noqa: E731
            TableName=table, Item=key, ConditionExpression=condition,
            ExpressionAttributeNames={"#u": "user_id", "#m": "marketing_id"},
            ExpressionAttributeValues={":m": {"S": m}, ":c": {"N": c}})
        if lands:
            call()  # the first: no item yet; the last: same campaign, stored one older
        else:
            with pytest.raises(ClientError, match="ConditionalCheckFailed"):
                call()
    for _ in range(2):  # a malformed text fails every time, not only the first
        with pytest.raises(ClientError, match="ValidationException"):
            dynamodb.put_item(TableName=table, Item=key, ConditionExpression="AND AND")


def test_get_records_answer_is_what_moto_serializer_writes(
    endpoint: Any, dynamodb: Any, streams: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-dump GetRecords answer equals moto's model-walking one: epoch milliseconds,
    base64 binary (sets too), every record type."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    arn, shard = _stream(dynamodb, streams, table)
    key = _item(2, 2, 1)
    dynamodb.put_item(TableName=table, Item=key | {
        "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x01", b"\x02"]}, "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1.5"]}, "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}}})
    dynamodb.update_item(TableName=table, Key=_item(2, 2, None), UpdateExpression="SET n = :n",
                         ExpressionAttributeValues={":n": {"N": "7"}})
    dynamodb.delete_item(TableName=table, Key=_item(2, 2, None))

    def records() -> dict[str, Any]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        answer = _raw_records(endpoint, iterator)
        answer.pop("NextShardIterator")
        return answer

    ours = records()
    assert [r["eventName"] for r in ours["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert ours["Records"][0]["dynamodb"]["NewImage"]["b"] == {"B": "AP8="}
    assert isinstance(ours["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], float | int)
    monkeypatch.setattr(DynamoDBStreamsHandler, "serialized",
                        DynamoDBStreamsHandler.serialized.__wrapped_by_harness__)
    assert records() == ours


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"S": "a"}, {"S": "a"}),
        ({"S": "a"}, {"S": "b"}),
        ({"S": "1"}, {"N": "1"}),
        ({"S": "YQ=="}, {"B": "YQ=="}),
        ({"B": "YQ=="}, {"B": "YQ=="}),
        ({"N": "1"}, {"N": "1.0"}),
        ({"N": "1"}, {"N": "2"}),
        ({"SS": ["a", "b"]}, {"SS": ["b", "a"]}),
        ({"NULL": True}, {"NULL": True}),
        ({"L": [{"S": "a"}]}, {"L": [{"S": "a"}]}),
    ],
)
def test_dynamo_type_comparisons_decide_as_moto_does(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_patches.apply()
    a, b = DynamoType(left), DynamoType(right)
    eq = DynamoType.__eq__.__wrapped_by_harness__  # type: ignore[attr-defined]
    ne = DynamoType.__ne__.__wrapped_by_harness__  # type: ignore[attr-defined]
    for x, y in ((a, b), (b, a)):
        assert (x == y, x != y) == (eq(x, y), ne(x, y))


@pytest.mark.parametrize(
    "projection",
    [
        {"ProjectionType": "ALL"},
        {"ProjectionType": "KEYS_ONLY"},
        {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]},
        {},
    ],
)
def test_index_projection_answers_as_moto_does(projection: dict[str, Any]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import GlobalSecondaryIndex

    moto_patches.apply()
    schema = [{"AttributeName": "m", "KeyType": "HASH"}, {"AttributeName": "c", "KeyType": "RANGE"}]
    index = GlobalSecondaryIndex("m-index", schema, projection, ["u", "c"])
    attrs = {"u": {"S": "user"}, "c": {"N": "1"}, "m": {"S": "mkt"}, "title": {"S": "t"},
             "other": {"S": "o"}}
    item = Item(DynamoType({"S": "user"}), DynamoType({"N": "1"}), attrs)
    original = type(index).project.__wrapped_by_harness__  # type: ignore[attr-defined]
    ours, moto = index.project(item), original(index, item)
    assert ours.to_json() == moto.to_json()
    assert (ours is item) == (moto is item)
