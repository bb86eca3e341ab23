"""answer_patches: the same answer bytes as moto writes, with less per-answer work."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import moto.core.responses as moto_responses
import pytest
from moto.core.responses import BaseResponse
from moto.dynamodb.models.utilities import dynamo_json_dump

from harness.aws import patches as moto_patches
from harness.aws.answer_patches import dump_answer


def _query_answer() -> dict[str, object]:
    items = [{"user_id": {"S": f"usér-{i}\n\"q\""}, "created_at": {"N": str(1_700_000_000_000 + i)},
              "tags": {"SS": ["a", "b"]}, "flag": {"BOOL": True}, "gone": {"NULL": True}}
             for i in range(3)]
    return {"Count": 3, "ScannedCount": 3, "Items": items, "LastEvaluatedKey": items[-1]}


def test_dump_answer_writes_what_moto_writes() -> None:
    answer = _query_answer()
    assert dump_answer(answer, dynamo_json_dump) == dynamo_json_dump(answer)


def test_dump_answer_hands_values_only_moto_knows_to_moto() -> None:
    answer = {"Items": [{"b": {"B": b"\x00\x01"}}],
              "When": datetime(2026, 1, 2)}  # noqa: DTZ001 - moto writes naive ones
    written = dump_answer(answer, dynamo_json_dump)
    assert written == dynamo_json_dump(answer)
    assert json.loads(written)["Items"][0]["b"]["B"] == "AAE="


def test_json_answers_keep_their_body_and_get_a_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moto_patches.apply()
    scanned: list[int] = []
    real_sub = moto_responses.re.sub

    def counting_sub(pattern: str, replacement: str, text: str) -> str:
        scanned.append(len(text))
        return real_sub(pattern, replacement, text)

    monkeypatch.setattr(moto_responses.re, "sub", counting_sub)
    body = json.dumps(_query_answer())
    headers, enriched = BaseResponse._enrich_response({"status": 200}, body)  # type: ignore[arg-type]
    assert enriched is body
    assert max(scanned, default=0) == 0  # the body was never scanned
    assert headers["status"] == "200"
    assert len(headers["x-amzn-requestid"]) >= 36


def test_xml_answers_still_get_the_request_id_in_their_body() -> None:
    moto_patches.apply()
    body = "<R><ResponseMetadata><RequestId>placeholder</RequestId></ResponseMetadata></R>"
    headers, enriched = BaseResponse._enrich_response({}, body)
    assert f"<RequestId>{headers['x-amzn-requestid']}</RequestId>" in enriched
    assert "placeholder" not in enriched


# ---- item_json: Query items written from the JSON text kept on each stored item ----------------


def test_spliced_answer_is_byte_for_byte_the_plain_dump() -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.utilities import dynamo_to_dict

    from harness.aws import item_json
    from harness.aws.responses import plain_item, plain_items_result

    stored = [Item(None, None, {"user_id": {"S": f"ü-{i}"}, "n": {"N": str(i)},
                                "m": {"M": {"k": {"L": [{"S": "x"}, {"NULL": True}]}}}})
              for i in range(3)]
    answer = {"Count": 3, "ScannedCount": 3, "Items": [item.attrs for item in stored],
              "LastEvaluatedKey": {"user_id": {"S": "ü-2"}}}
    expected = json.dumps(plain_items_result(answer, dynamo_to_dict))
    for _ in range(2):  # texts made, then texts kept
        item_json.remember(stored)
        texts = item_json.take(answer, 0, lambda attrs: plain_item(attrs, dynamo_to_dict))
        assert texts is not None
        rest = plain_items_result({**answer, "Items": item_json.ITEMS_MARK}, dynamo_to_dict)
        assert item_json.splice(json.dumps(rest), texts) == expected


@pytest.fixture()
def dynamodb(aws_client_factory: Any) -> Any:
    return aws_client_factory("dynamodb")


@pytest.fixture()
def table(dynamodb: Any) -> Iterator[str]:
    name = f"j-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"},
                   {"AttributeName": "created_at", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"},
                              {"AttributeName": "created_at", "AttributeType": "N"}],
    )
    for n in range(3):
        dynamodb.put_item(TableName=name, Item={"user_id": {"S": "u"}, "created_at": {"N": str(n)},
                                                "title": {"S": f"t{n}"}})
    yield name
    dynamodb.delete_table(TableName=name)


def _titles(dynamodb: Any, table: str, **extra: Any) -> list[Any]:
    answer = dynamodb.query(TableName=table, KeyConditionExpression="user_id = :u",
                            ExpressionAttributeValues={":u": {"S": "u"}}, **extra)
    return [item.get("title", {}).get("S") for item in answer["Items"]]


def test_kept_texts_are_used_and_follow_every_write(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.aws import query_patches, responses

    assert _titles(dynamodb, table) == ["t0", "t1", "t2"]
    converted: list[object] = []
    plain = responses.plain_item
    monkeypatch.setattr(query_patches, "plain_item",
                        lambda attrs, slow: converted.append(attrs) or plain(attrs, slow))
    assert _titles(dynamodb, table) == ["t0", "t1", "t2"]
    assert converted == []  # every item written from its kept text
    key = {"user_id": {"S": "u"}, "created_at": {"N": "1"}}
    dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET title = :t",
                         ExpressionAttributeValues={":t": {"S": "changed"}})
    dynamodb.put_item(TableName=table, Item={**key, "created_at": {"N": "2"}, "title": {"S": "new"}})
    assert _titles(dynamodb, table) == ["t0", "changed", "new"]
    assert len(converted) == 2  # the updated item and the replaced one
    assert _titles(dynamodb, table, ProjectionExpression="created_at") == [None, None, None]
    assert _titles(dynamodb, table, ScanIndexForward=False, Limit=2) == ["new", "changed"]
