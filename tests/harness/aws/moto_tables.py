"""Helpers the moto-patch tests share: items like notification-records', paged queries, a scan
as the oracle, a table's stream and shard, GetRecords without botocore's parsing."""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.config import Config

__all__ = ["NO_RETRY", "item", "load", "query", "raw_records", "scan_oracle", "stream"]

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def item(user: int, created: int, marketing: int | None) -> dict[str, Any]:
    record: dict[str, Any] = {"user_id": {"S": f"u{user}"}, "created_at": {"N": str(created)}}
    if marketing is not None:
        record["marketing_id"] = {"S": f"m{marketing}"}
    return record


def load(dynamodb: Any, table: str, count: int) -> None:
    items = [item(i % 30, i, i % 7 if i % 5 else None) for i in range(count)]
    for start in range(0, count, 25):
        dynamodb.batch_write_item(
            RequestItems={
                table: [{"PutRequest": {"Item": one}} for one in items[start : start + 25]]
            }
        )


def query(
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


def scan_oracle(dynamodb: Any, table: str, attr: str, value: str) -> list[int]:
    items = dynamodb.scan(TableName=table)["Items"]
    return sorted(int(i["created_at"]["N"]) for i in items if i.get(attr, {}).get("S") == value)


def stream(dynamodb: Any, streams: Any, table: str) -> tuple[str, str]:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return arn, shard


def raw_records(endpoint: Any, iterator: str) -> dict[str, Any]:
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
