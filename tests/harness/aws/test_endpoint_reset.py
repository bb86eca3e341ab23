"""POST /moto-api/reset stops and forgets everything the endpoint holds, and requests wait for it.

These tests reset the process's moto state: they create everything they use themselves.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from marking_functions import NO_RETRY, create_marking_function, read_marks, wait_until

from harness.aws.endpoint import Endpoint

HANDLER = textwrap.dedent("""
    import json, os

    def handler(event, context):
        with open(os.environ["MARKS"], "a") as marks:
            if "Records" in event:
                for record in event["Records"]:
                    marks.write("record " + record["dynamodb"]["Keys"]["k"]["S"] + "\\n")
            else:
                marks.write("event " + json.dumps(event) + "\\n")
        if event.get("fail"):
            raise RuntimeError("fails, to be retried")
        return None
""")


def _reset(endpoint: Endpoint) -> httpx.Response:
    return httpx.post(endpoint.url + "/moto-api/reset", timeout=60)


@pytest.fixture
def fast_event_retries(endpoint: Endpoint) -> Iterator[None]:
    """Event retries after 0.3 s instead of AWS's 1 and 2 minutes (white-box, for the test)."""
    runtime: Any = endpoint._runtime
    saved = runtime._events.retry_delays
    runtime._events.retry_delays = (0.3, 0.3)
    yield
    runtime._events.retry_delays = saved


def _stream_table(dynamodb: Any, name: str) -> str:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"])


def test_reset_stops_mapping_and_queued_event_retries_nothing_runs_afterwards(
    endpoint: Endpoint,
    aws_client_factory: Callable[..., Any],
    tmp_path: Path,
    fast_event_retries: None,
) -> None:
    marks = tmp_path / "marks.txt"
    dynamodb, lam = aws_client_factory("dynamodb"), aws_client_factory("lambda", config=NO_RETRY)
    name = create_marking_function(aws_client_factory, HANDLER, marks)
    table = f"src-{uuid.uuid4().hex[:6]}"
    stream = _stream_table(dynamodb, table)
    mapping = lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream, StartingPosition="TRIM_HORIZON", BatchSize=1
    )["UUID"]
    dynamodb.put_item(TableName=table, Item={"k": {"S": "before"}})
    wait_until(lambda: "record before" in read_marks(marks))
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": true}')
    wait_until(lambda: any(line.startswith("event") for line in read_marks(marks)))

    assert _reset(endpoint).json() == {"status": "ok"}
    seen = len(read_marks(marks))

    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=mapping)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert not [t for t in threading.enumerate() if t.name == f"esm-{mapping[:8]}"]
    # the same table again: the forgotten mapping must not deliver its records
    _stream_table(dynamodb, table)
    dynamodb.put_item(TableName=table, Item={"k": {"S": "after"}})
    time.sleep(2.0)  # two Event retries (0.3 s apart) and several poll intervals
    assert len(read_marks(marks)) == seen, read_marks(marks)[seen:]


def test_reset_forgets_functions_tables_and_partition_indexes(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    dynamodb, lam = aws_client_factory("dynamodb"), aws_client_factory("lambda", config=NO_RETRY)
    name = create_marking_function(aws_client_factory, HANDLER, tmp_path / "marks.txt")
    lam.invoke(FunctionName=name, Payload=b"{}")  # a warm worker
    table = {
        "TableName": "indexed",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "k", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "g-index",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
    query = {
        "TableName": "indexed",
        "IndexName": "g-index",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "x"}},
    }
    dynamodb.create_table(**table)
    dynamodb.put_item(TableName="indexed", Item={"k": {"S": "1"}, "g": {"S": "x"}})
    assert dynamodb.query(**query)["Count"] == 1  # builds the partition index

    assert _reset(endpoint).status_code == 200

    assert lam.list_functions()["Functions"] == []
    assert not endpoint._runtime._live  # type: ignore[union-attr]  # no worker left running
    assert "indexed" not in dynamodb.list_tables()["TableNames"]
    dynamodb.create_table(**table)
    assert dynamodb.query(**query)["Count"] == 0


def test_requests_during_resets_wait_instead_of_failing(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    iam, dynamodb = aws_client_factory("iam"), aws_client_factory("dynamodb", config=NO_RETRY)
    sts = aws_client_factory("sts", config=NO_RETRY)
    errors: list[str] = []
    stop = threading.Event()

    def hammer(call: Callable[[], Any]) -> None:
        while not stop.is_set():
            try:
                call()
            except Exception as exc:  # every failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=hammer, args=(call,))
        for call in (
            lambda: iam.list_roles(),
            lambda: dynamodb.list_tables(),
            lambda: sts.get_caller_identity(),
        )
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in range(15):
            assert _reset(endpoint).status_code == 200
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []


def test_on_reset_hooks_run_and_a_failing_hook_is_reported(endpoint: Endpoint) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("cannot reset")

    remove_ok = endpoint.on_reset(lambda: calls.append("ok"), name="ok-hook")
    remove_broken = endpoint.on_reset(broken, name="broken-hook")
    try:
        answer = _reset(endpoint)
        assert answer.status_code == 500 and "broken-hook" in answer.json()["message"]
        assert calls == ["ok"]
    finally:
        remove_ok()
        remove_broken()
    assert _reset(endpoint).status_code == 200 and calls == ["ok"]


def test_reset_answers_as_moto_does(endpoint: Endpoint) -> None:
    assert json.loads(_reset(endpoint).content) == {"status": "ok"}


def test_first_request_after_reset_builds_no_iam_backend(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    from moto.iam.models import iam_backends

    aws_client_factory("iam").list_roles()
    assert _reset(endpoint).status_code == 200
    aws_client_factory("dynamodb").list_tables()
    assert not any(dict(account) for account in dict(iam_backends).values())  # nothing parsed


def test_managed_policies_after_reset_are_fresh_copies(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    iam = aws_client_factory("iam")
    policy = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.create_role(RoleName="r1", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName="r1", PolicyArn=policy)
    assert iam.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 1

    assert _reset(endpoint).status_code == 200

    fresh = iam.get_policy(PolicyArn=policy)["Policy"]
    assert fresh["AttachmentCount"] == 0
    assert iam.list_entities_for_policy(PolicyArn=policy)["PolicyRoles"] == []
    document = iam.get_policy_version(PolicyArn=policy, VersionId=fresh["DefaultVersionId"])
    assert "logs:CreateLogGroup" in json.dumps(document["PolicyVersion"]["Document"])
    iam.create_role(RoleName="r2", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName="r2", PolicyArn=policy)
    roles = iam.list_entities_for_policy(PolicyArn=policy)["PolicyRoles"]
    assert [role["RoleName"] for role in roles] == ["r2"]
