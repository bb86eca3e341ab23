"""condition_patches: a conditional write parses its expression once and decides as before."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.comparisons import ConditionExpressionParser

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
#: the stream processor's PUT_CONDITION
CONDITION = ("attribute_not_exists(user_id) OR (transaction_id = :tx AND "
             "(attribute_not_exists(source_sequence) OR source_sequence < :seq))")


@pytest.fixture()
def dynamodb(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("dynamodb", config=NO_RETRY)


@pytest.fixture()
def table(dynamodb: Any) -> Iterator[str]:
    name = f"c-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
    )
    yield name
    dynamodb.delete_table(TableName=name)


@pytest.fixture()
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The expressions moto parsed (every ConditionExpressionParser.parse call)."""
    seen: list[str] = []
    parse = ConditionExpressionParser.parse

    def counted(self: Any) -> Any:
        seen.append(self.condition_expression)
        return parse(self)

    monkeypatch.setattr(ConditionExpressionParser, "parse", counted)
    return seen


def _put(dynamodb: Any, table: str, tx: str, seq: str) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={"user_id": {"S": "u"}, "transaction_id": {"S": tx}, "source_sequence": {"S": seq}},
        ConditionExpression=CONDITION,
        ExpressionAttributeValues={":tx": {"S": tx}, ":seq": {"S": seq}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def test_conditional_put_is_parsed_once(dynamodb: Any, table: str, parses: list[str]) -> None:
    _put(dynamodb, table, "tx-1", "0002")
    assert parses == [CONDITION]


def test_each_request_is_decided_by_its_own_values(dynamodb: Any, table: str) -> None:
    _put(dynamodb, table, "tx-1", "0002")  # absent: written
    _put(dynamodb, table, "tx-1", "0003")  # same transaction, newer record: written
    with pytest.raises(ClientError) as stale:
        _put(dynamodb, table, "tx-1", "0001")  # same text, older record: refused
    assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert stale.value.response["Item"]["source_sequence"] == {"S": "0003"}
    with pytest.raises(ClientError) as other:
        _put(dynamodb, table, "tx-2", "0009")  # another transaction holds the key
    assert other.value.response["Item"]["transaction_id"] == {"S": "tx-1"}
    item = dynamodb.get_item(TableName=table, Key={"user_id": {"S": "u"}})["Item"]
    assert item["source_sequence"] == {"S": "0003"}


def test_conditional_delete_and_update_decide_as_before(dynamodb: Any, table: str) -> None:
    _put(dynamodb, table, "tx-1", "0002")
    dynamodb.update_item(TableName=table, Key={"user_id": {"S": "u"}},
                         UpdateExpression="SET n = :n", ConditionExpression="transaction_id = :tx",
                         ExpressionAttributeValues={":n": {"N": "1"}, ":tx": {"S": "tx-1"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.delete_item(TableName=table, Key={"user_id": {"S": "u"}},
                             ConditionExpression="transaction_id = :tx",
                             ExpressionAttributeValues={":tx": {"S": "tx-2"}})
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    dynamodb.delete_item(TableName=table, Key={"user_id": {"S": "u"}},
                         ConditionExpression="transaction_id = :tx",
                         ExpressionAttributeValues={":tx": {"S": "tx-1"}})
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"user_id": {"S": "u"}})


def test_bad_expression_still_answers_validation_exception(dynamodb: Any, table: str) -> None:
    with pytest.raises(ClientError) as bad:
        dynamodb.put_item(TableName=table, Item={"user_id": {"S": "u"}},
                          ConditionExpression="transaction_id = :missing")
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_same_text_with_other_names_is_decided_by_its_own_names(dynamodb: Any, table: str) -> None:
    dynamodb.put_item(TableName=table, Item={"user_id": {"S": "u"}, "a": {"S": "1"},
                                             "b": {"S": "2"}})
    condition = "#field = :v"
    for field, value, holds in (("a", "1", True), ("b", "1", False), ("b", "2", True)):
        try:
            dynamodb.put_item(TableName=table, Item={"user_id": {"S": "u"}, "a": {"S": "1"},
                                                     "b": {"S": "2"}},
                              ConditionExpression=condition,
                              ExpressionAttributeNames={"#field": field},
                              ExpressionAttributeValues={":v": {"S": value}})
            held = True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            held = False
        assert held is holds, (field, value)


def test_a_value_name_the_request_lacks_is_still_a_validation_exception(
    dynamodb: Any, table: str
) -> None:
    _put(dynamodb, table, "tx-1", "0002")  # the condition's shape is known now
    with pytest.raises(ClientError) as bad:
        dynamodb.put_item(TableName=table, Item={"user_id": {"S": "u"}},
                          ConditionExpression=CONDITION,
                          ExpressionAttributeValues={":tx": {"S": "tx-1"}})
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_a_condition_is_parsed_into_a_tree_once_for_every_value(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    apply = ConditionExpressionParser._apply_parens_and_booleans

    def counted(self: Any, nodes: Any) -> Any:
        built.append(self.condition_expression)
        return apply(self, nodes)

    monkeypatch.setattr(ConditionExpressionParser, "_apply_parens_and_booleans", counted)
    name = f"n_{uuid.uuid4().hex[:8]}"  # a text no earlier test parsed
    condition = f"attribute_not_exists({name}) OR {name} < :v"
    for value in ("1", "2", "3"):
        dynamodb.put_item(TableName=table, Item={"user_id": {"S": "u"}},
                          ConditionExpression=condition,
                          ExpressionAttributeValues={":v": {"N": value}})
    assert built == [condition]
