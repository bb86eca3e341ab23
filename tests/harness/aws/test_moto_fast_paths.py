"""The fast paths of harness/aws/patches.py answer as moto's own code does (items, sizes, limits,
projections, GetRecords documents, comparisons)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.aws import patches as moto_patches
from tests.harness.aws import moto_tables


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
    moto_tables.load(dynamodb, table, 600)
    for index, attr, value in ((None, "user_id", "u7"), ("marketing_id-index", "marketing_id", "m3")):
        oracle = moto_tables.scan_oracle(dynamodb, table, attr, value)
        for forward in (True, False):
            expected = oracle if forward else oracle[::-1]
            all_items_sizes.clear()
            assert moto_tables.query(dynamodb, table, index, attr, value, Limit=4,
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
    key = moto_tables.item(1, 1, 4)
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

    arn, shard = moto_tables.stream(dynamodb, streams, table)
    key = moto_tables.item(2, 2, 1)
    dynamodb.put_item(TableName=table, Item=key | {
        "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x01", b"\x02"]}, "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1.5"]}, "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}}})
    dynamodb.update_item(TableName=table, Key=moto_tables.item(2, 2, None), UpdateExpression="SET n = :n",
                         ExpressionAttributeValues={":n": {"N": "7"}})
    dynamodb.delete_item(TableName=table, Key=moto_tables.item(2, 2, None))

    def records() -> dict[str, Any]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        answer = moto_tables.raw_records(endpoint, iterator)
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
