"""CPU per DynamoDB Query in the endpoint's moto app: the direct dispatch against moto's Flask path.

Usage: .venv/bin/python bench/bench_moto_dispatch.py [--blocks 8] [--block-size 300]
Calls :class:`harness.aws.moto_app.MotoApp` in-process (no network, patches applied) with the
same signed Query (a 10-item partition, Limit 20) in alternating blocks, once with the direct
``DynamoHandler`` dispatch and once through moto's dispatcher and Flask app, and prints the
median process CPU per Query of each. Alternating blocks keep the comparison fair on a machine
whose load changes during the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from harness.aws import patches as moto_patches
from harness.aws.moto_app import HttpRequest, MotoApp

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/ap-southeast-1/dynamodb/"
    "aws4_request, SignedHeaders=host;x-amz-target, Signature=0"
)
TABLE = "bench-moto-dispatch"


def request(action: str, document: dict[str, Any]) -> HttpRequest:
    """A signed DynamoDB JSON request, as boto3 sends it."""
    body = json.dumps(document).encode()
    headers = [
        ("host", "127.0.0.1:4566"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", f"DynamoDB_20120810.{action}"),
        ("authorization", AUTH),
        ("content-length", str(len(body))),
    ]
    return HttpRequest("POST", "/", b"/", b"", headers, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=300)
    args = parser.parse_args()
    moto_patches.apply()
    apps = {"moto's Flask path": MotoApp(direct_dynamodb=False), "direct dispatch": MotoApp()}
    keys = [
        {"AttributeName": "user_id", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    definitions = [
        {"AttributeName": "user_id", "AttributeType": "S"},
        {"AttributeName": "created_at", "AttributeType": "N"},
    ]
    setup = apps["direct dispatch"]
    create = {"TableName": TABLE, "BillingMode": "PAY_PER_REQUEST", "KeySchema": keys}
    setup(request("CreateTable", {**create, "AttributeDefinitions": definitions}))
    for index in range(10):
        item = {"user_id": {"S": "u"}, "created_at": {"N": str(index)}, "title": {"S": "x" * 50}}
        setup(request("PutItem", {"TableName": TABLE, "Item": item}))
    query = request(
        "Query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "#pk = :id",
            "ExpressionAttributeNames": {"#pk": "user_id"},
            "ExpressionAttributeValues": {":id": {"S": "u"}},
            "ScanIndexForward": False,
            "Limit": 20,
        },
    )
    cpu_ms: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():  # warm-up; every answer must be a page of 10
        for _ in range(50):
            answer = app(query)
            assert answer.status == 200 and json.loads(answer.body)["Count"] == 10, answer.body
    for _ in range(args.blocks):
        for name, app in apps.items():
            started = time.process_time()
            for _ in range(args.block_size):
                app(query)
            cpu_ms[name].append((time.process_time() - started) * 1000 / args.block_size)
    for name, values in cpu_ms.items():
        print(
            f"{name:>18}: {statistics.median(values):.3f} ms CPU per Query "
            f"(median of {args.blocks} blocks of {args.block_size}; min {min(values):.3f})"
        )


if __name__ == "__main__":
    main()
