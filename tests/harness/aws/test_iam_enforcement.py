"""IAM enforcement on the endpoint: a role's own session is allowed what its policy grants, on
the resources it names, and refused the rest in AWS's words; every decision is recorded."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from marking_functions import create_marking_function, read_marks, wait_until

from harness.aws.endpoint import Endpoint
from tests.harness.conftest import create_keyed_table

ACCOUNT, REGION = "123456789012", "ap-southeast-1"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                   "Principal": {"Service": "lambda.amazonaws.com"}}],
}


@pytest.fixture
def enforced(endpoint: Endpoint) -> Iterator[Endpoint]:
    answer = httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": True}).json()
    httpx.delete(f"{endpoint.url}/_harness/iam/decisions")
    try:
        yield endpoint
    finally:
        httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": answer["previous"]})


def _role(factory: Callable[..., Any], statements: list[dict[str, Any]]) -> tuple[str, str]:
    iam = factory("iam")
    name = f"probe-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return name, arn


def _as(factory: Callable[..., Any], role_arn: str, service: str) -> Any:
    session = factory("sts").assume_role(RoleArn=role_arn, RoleSessionName="probe")["Credentials"]
    return factory(service, aws_access_key_id=session["AccessKeyId"],
                   aws_secret_access_key=session["SecretAccessKey"],
                   aws_session_token=session["SessionToken"])


def _table(factory: Callable[..., Any]) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    factory("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"},
                              {"AttributeName": "g", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
    )
    return name


def _code(error: ClientError) -> tuple[str, str]:
    return error.response["Error"]["Code"], error.response["Error"]["Message"]


def test_a_scoped_dynamodb_grant_allows_its_table_and_index_and_denies_another(
    enforced: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    mine, other = _table(aws_client_factory), _table(aws_client_factory)
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{mine}"
    role, role_arn = _role(aws_client_factory, [
        {"Sid": "Read", "Effect": "Allow", "Action": ["dynamodb:Query"],
         "Resource": [arn, f"{arn}/index/*"]},
    ])
    client = _as(aws_client_factory, role_arn, "dynamodb")
    query = {"KeyConditionExpression": "k = :k", "ExpressionAttributeValues": {":k": {"S": "a"}}}
    assert client.query(TableName=mine, **query)["Count"] == 0
    client.query(TableName=mine, IndexName="by-g", KeyConditionExpression="g = :g",
                 ExpressionAttributeValues={":g": {"S": "a"}})
    with pytest.raises(ClientError) as denied:
        client.query(TableName=other, **query)
    code, message = _code(denied.value)
    assert code == "AccessDeniedException"
    assert f"assumed-role/{role}/probe is not authorized to perform: dynamodb:Query" in message
    assert f"table/{other} because no identity-based policy allows" in message
    with pytest.raises(ClientError) as write:
        client.put_item(TableName=mine, Item={"k": {"S": "a"}})
    assert _code(write.value)[0] == "AccessDeniedException"
    rows = httpx.get(f"{enforced.url}/_harness/iam/decisions").json()["decisions"]
    seen = {(r["role"], r["action"], r["resource"].rsplit("/", 1)[-1], r["allowed"]) for r in rows}
    assert (role, "dynamodb:Query", mine, True) in seen
    assert (role, "dynamodb:Query", "by-g", True) in seen
    assert (role, "dynamodb:Query", other, False) in seen
    assert (role, "dynamodb:PutItem", mine, False) in seen


def test_an_explicit_deny_wins_and_a_policy_change_applies_at_once(
    enforced: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    queue = aws_client_factory("sqs").create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")
    url = queue["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"
    role, role_arn = _role(aws_client_factory, [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
    ])
    client = _as(aws_client_factory, role_arn, "sqs")
    client.send_message(QueueUrl=url, MessageBody="x")
    deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "No", "Effect": "Deny", "Action": "sqs:*", "Resource": "*"}]}
    aws_client_factory("iam").put_role_policy(
        RoleName=role, PolicyName="deny", PolicyDocument=json.dumps(deny))
    with pytest.raises(ClientError) as denied:
        client.send_message(QueueUrl=url, MessageBody="x")
    code, message = _code(denied.value)
    assert code in ("AccessDenied", "AccessDeniedException")
    assert "with an explicit deny" in message and queue_arn in message


def test_logs_are_scoped_to_the_log_group(
    enforced: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    logs = aws_client_factory("logs")
    mine, other = f"/test/{uuid.uuid4().hex[:8]}", f"/test/{uuid.uuid4().hex[:8]}"
    for group in (mine, other):
        logs.create_log_group(logGroupName=group)
    _, role_arn = _role(aws_client_factory, [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{mine}:*"},
    ])
    client = _as(aws_client_factory, role_arn, "logs")
    client.create_log_stream(logGroupName=mine, logStreamName="s")
    with pytest.raises(ClientError) as denied:
        client.create_log_stream(logGroupName=other, logStreamName="s")
    assert f"log-group:{other}:log-stream:s" in _code(denied.value)[1]


def test_invoke_is_decided_against_the_function_arn(
    enforced: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    lam = aws_client_factory("lambda")
    _, exec_arn = _role(aws_client_factory, [
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    names = [f"f-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=exec_arn,
                            Handler="app.handler", Code={"ZipFile": buffer.getvalue()})
    allowed = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{names[0]}"
    _, role_arn = _role(aws_client_factory, [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": allowed},
    ])
    client = _as(aws_client_factory, role_arn, "lambda")
    assert json.loads(client.invoke(FunctionName=names[0])["Payload"].read()) == {"ok": True}
    with pytest.raises(ClientError) as denied:
        client.invoke(FunctionName=names[1])
    code, message = _code(denied.value)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert code == "AccessDeniedException"
    assert f"lambda:InvokeFunction on resource: {allowed[:-len(names[0])]}{names[1]}" in message


def test_unknown_keys_are_refused_only_while_enforced(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    stranger = aws_client_factory("dynamodb", aws_access_key_id="AKIASTRANGER00000000",
                                  aws_secret_access_key="x")
    previous = httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": False}).json()
    try:
        stranger.list_tables(Limit=1)
        assert httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": True}).json() == {
            "enforce": True, "previous": False}
        with pytest.raises(ClientError) as refused:
            stranger.list_tables(Limit=1)
        assert _code(refused.value)[0] == "UnrecognizedClientException"
        aws_client_factory("dynamodb").list_tables(Limit=1)  # the harness's own key: administrator
    finally:
        httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": previous["previous"]})
    bad = httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": "yes"})
    assert bad.status_code == 400


MARK_RECORDS = """
import os

def handler(event, context):
    with open(os.environ["MARKS"], "a") as marks:
        for record in event["Records"]:
            marks.write(record["eventName"] + "\\n")
"""


def _decisions(endpoint: Endpoint, role: str, action: str) -> list[dict[str, Any]]:
    rows = httpx.get(f"{endpoint.url}/_harness/iam/decisions").json()["decisions"]
    return [row for row in rows if row["role"] == role and row["action"] == action]


def test_a_mapping_reads_its_stream_as_the_function_execution_role(
    enforced: Endpoint, aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Lambda reads a DynamoDB stream with the function's execution role: refused (the
    mapping reports the problem) until the role's policy grants the stream reads."""
    marks = tmp_path / "marks"
    lam = aws_client_factory("lambda")
    name = create_marking_function(aws_client_factory, MARK_RECORDS, marks)
    role = lam.get_function(FunctionName=name)["Configuration"]["Role"].rsplit("/", 1)[1]
    dynamodb = aws_client_factory("dynamodb")
    table, stream = create_keyed_table(dynamodb, "esm-iam", stream=True)
    mapping = lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream, StartingPosition="TRIM_HORIZON"
    )["UUID"]
    try:
        dynamodb.put_item(TableName=table, Item={"k": {"S": "1"}})
        wait_until(lambda: any(not row["allowed"] for row in
                               _decisions(enforced, role, "dynamodb:DescribeStream")))
        result = lam.get_event_source_mapping(UUID=mapping)["LastProcessingResult"]
        assert "AccessDeniedException" in result and read_marks(marks) == []

        grant = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": stream,
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetShardIterator",
                       "dynamodb:GetRecords"]}]}
        aws_client_factory("iam").put_role_policy(
            RoleName=role, PolicyName="stream", PolicyDocument=json.dumps(grant))
        wait_until(lambda: read_marks(marks) == ["INSERT"])
        (allowed,) = [row for row in _decisions(enforced, role, "dynamodb:GetRecords")
                      if row["allowed"]]
        assert allowed["resource"] == stream
    finally:
        lam.delete_event_source_mapping(UUID=mapping)
