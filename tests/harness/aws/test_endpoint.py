"""The endpoint as a server object, from the command line, and for plain AWS clients."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import httpx
import pytest

from harness.aws.endpoint import Endpoint, EndpointError
from harness.aws.moto_app import HttpRequest
from harness.aws.routing import signing_scope, written_tables


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoint_start_on_port_zero_answers_and_stop_frees_port() -> None:
    server = Endpoint(port=0).start()
    try:
        port = server.port
        assert port != 0 and server.url == f"http://127.0.0.1:{port}"
        assert (
            httpx.get(server.url + "/_localstack/health").json()["services"]["dynamodb"]
            == "running"
        )
    finally:
        server.stop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_endpoint_port_in_use_raises_clear_error(endpoint: Endpoint) -> None:
    with pytest.raises(EndpointError, match=f"cannot listen on 127.0.0.1:{endpoint.port}.*--port"):
        Endpoint(port=endpoint.port).start()


def test_endpoint_region_comes_from_the_signature(aws_client_factory: Callable[..., Any]) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    eu = aws_client_factory("dynamodb", region="eu-west-1")
    eu.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    )
    arn = eu.describe_table(TableName=name)["Table"]["TableArn"]
    assert arn.startswith("arn:aws:dynamodb:eu-west-1:")
    assert name not in aws_client_factory("dynamodb").list_tables()["TableNames"]


def test_plain_boto3_with_aws_endpoint_url_reaches_endpoint(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    aws_client_factory("sqs").create_queue(QueueName=name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    urls = boto3.session.Session().client("sqs").list_queues()["QueueUrls"]
    assert any(url.endswith(f"/{name}") for url in urls)


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_lists_tables(endpoint: Endpoint, aws_client_factory: Callable[..., Any]) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    aws_client_factory("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    )
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "ap-southeast-1",
    }
    done = subprocess.run(
        ["aws", "--endpoint-url", endpoint.url, "dynamodb", "list-tables"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert name in json.loads(done.stdout)["TableNames"]


def test_python_m_harness_endpoint_prints_url_and_stops_on_sigterm() -> None:
    port = _free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "harness.aws.endpoint", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url == f"http://127.0.0.1:{port}"
            client = boto3.client(
                "dynamodb",
                endpoint_url=url,
                region_name="ap-southeast-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            assert client.list_tables()["TableNames"] == []
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_python_m_harness_endpoint_port_taken_exits_with_message(endpoint: Endpoint) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.aws.endpoint", "--port", str(endpoint.port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and "--port" in done.stderr


def _request(headers: list[tuple[str, str]]) -> HttpRequest:
    return HttpRequest("POST", "/", b"/", b"", headers, b"")


def test_signing_scope_reads_sigv4_credential() -> None:
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-central-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    )
    assert signing_scope(_request([("authorization", auth)])) == (
        "AKIDEXAMPLE",
        "eu-central-1",
        "lambda",
    )
    assert signing_scope(_request([])) is None


@pytest.mark.parametrize(
    ("action", "body", "tables"),
    [
        ("PutItem", {"TableName": "a", "Item": {}}, ["a"]),
        ("BatchWriteItem", {"RequestItems": {"a": [], "b": []}}, ["a", "b"]),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}}]},
            ["a", "b"],
        ),
        (
            "ExecuteStatement",
            {"Statement": 'UPDATE "command-records" SET x=1'},
            ["command-records"],
        ),
        (
            "BatchExecuteStatement",
            {
                "Statements": [
                    {"Statement": "INSERT INTO t VALUE {'k': 1}"},
                    {"Statement": 'DELETE FROM "u" WHERE k=1'},
                ]
            },
            ["t", "u"],
        ),
        ("PutItem", b"not json", []),
    ],
)
def test_written_tables_names_every_changed_table(
    action: str, body: Any, tables: list[str]
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert written_tables(action, raw) == tables


def test_moto_api_data_json_lists_dynamodb_tables_and_items(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    name = f"dj-{uuid.uuid4().hex[:8]}"
    dynamodb = aws_client_factory("dynamodb")
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "k", "KeyType": "HASH"},
            {"AttributeName": "n", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "k", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
    )
    item = {"k": {"S": "a"}, "n": {"N": "1"}, "tags": {"L": [{"S": "x"}, {"M": {"y": {"N": "2"}}}]}}
    dynamodb.put_item(TableName=name, Item=item)
    dynamodb.query(  # moto's item copies from a Query are not listed as items
        TableName=name,
        KeyConditionExpression="k = :k",
        ExpressionAttributeValues={":k": {"S": "a"}},
    )
    aws_client_factory("sqs").create_queue(QueueName=name)
    iam = aws_client_factory("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws_client_factory("lambda")
    lam.create_function(  # moto's own data.json crashes on a Lambda function without Docker
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zipped_handler()},
    )
    answer = httpx.get(endpoint.url + "/moto-api/data.json")
    lam.delete_function(FunctionName=name)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert name in [f["function_name"] for f in data["awslambda"]["LambdaFunction"]]
    tables = [t for t in data["dynamodb"]["Table"] if t["name"] == name]
    assert len(tables) == 1 and tables[0]["table_arn"].endswith(f":table/{name}")
    items = [i for i in data["dynamodb"]["Item"] if i["table_name"] == name]
    assert items == [
        {
            "account_id": "123456789012",
            "region_name": "ap-southeast-1",
            "table_name": name,
            "hash_key": {"S": "a"},
            "range_key": {"N": "1"},
            "attrs": item,
        }
    ]
    assert name in [q["name"] for q in data["sqs"]["Queue"]]  # the rest still comes from moto


def _zipped_handler() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()
