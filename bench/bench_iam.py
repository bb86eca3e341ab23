"""Cost of IAM enforcement on the embedded endpoint: a role session's GetItem and Query, with
enforcement off and on (one run; prints p50/p99 per request and the enforcer's own mean).

    .venv/bin/python bench/bench_iam.py [--requests 400]

The endpoint runs in this process (port 0); the client is a role session from STS AssumeRole,
as a Lambda function's or a task's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import boto3
import httpx
from botocore.config import Config

from harness.aws.endpoint import Endpoint

REGION, ACCOUNT, TABLE = "ap-southeast-1", "123456789012", "bench-iam"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]}


def _client(url: str, service: str, **keys: Any) -> Any:
    keys.setdefault("aws_access_key_id", "test")
    keys.setdefault("aws_secret_access_key", "test")
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        config=Config(retries={"max_attempts": 1}), **keys)


def _setup(url: str) -> Any:
    dynamodb, iam = _client(url, "dynamodb"), _client(url, "iam")
    dynamodb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    dynamodb.put_item(TableName=TABLE, Item={"k": {"S": "a"}})
    arn = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
         "Resource": [table, f"{table}/index/*"]}]}
    iam.put_role_policy(RoleName="bench", PolicyName="p", PolicyDocument=json.dumps(policy))
    keys = _client(url, "sts").assume_role(RoleArn=arn, RoleSessionName="bench")["Credentials"]
    return _client(url, "dynamodb", aws_access_key_id=keys["AccessKeyId"],
                   aws_secret_access_key=keys["SecretAccessKey"],
                   aws_session_token=keys["SessionToken"])


def _measure(client: Any, requests: int) -> dict[str, float]:
    times = []
    for n in range(requests):
        started = time.perf_counter()
        if n % 2:
            client.get_item(TableName=TABLE, Key={"k": {"S": "a"}})
        else:
            client.query(TableName=TABLE, KeyConditionExpression="k = :k",
                         ExpressionAttributeValues={":k": {"S": "a"}})
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with Endpoint(port=0, region=REGION) as endpoint:
        client = _setup(endpoint.url)
        _measure(client, 50)  # warm
        for enforce in (False, True, False, True):
            httpx.put(endpoint.url + "/_harness/iam", json={"enforce": enforce})
            figures = _measure(client, args.requests)
            print(f"enforcement {'on ' if enforce else 'off'}: p50 {figures['p50']:.2f} ms, "
                  f"p99 {figures['p99']:.2f} ms over {args.requests} requests")
        record = httpx.get(endpoint.url + "/_harness/iam/decisions").json()
        print(f"enforcer: {record['mean_decision_ms']} ms per decided request "
              f"({record['decided_requests']} requests)")


if __name__ == "__main__":
    main()
