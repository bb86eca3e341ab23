"""What the endpoint serves on its event loop (a warm Invoke, a DynamoDB read when moto's lock is
free) and what on its threads."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config

from harness.aws.endpoint import Endpoint
from harness.aws.moto_app import HttpRequest, HttpResponse
from harness.aws.patches import DYNAMODB_LOCK
from tests.harness.conftest import create_keyed_table

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_warm_invoke_is_served_without_a_thread_unless_a_reset_runs(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    iam, lam = aws_client_factory("iam"), aws_client_factory("lambda", config=NO_RETRY)
    role = iam.create_role(RoleName=f"r-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")
    name = f"fn-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role["Role"]["Arn"],
                        Handler="app.handler", Code={"ZipFile": _zip()})
    app = endpoint._app
    assert app is not None
    on_threads: list[str] = []
    handle = app.handle

    def counted(request: HttpRequest) -> HttpResponse:
        if request.path.endswith("/invocations"):
            on_threads.append(request.path)
        return handle(request)

    monkeypatch.setattr(app, "handle", counted)
    answers = [lam.invoke(FunctionName=name, Payload=json.dumps({"n": n}).encode())
               for n in range(4)]
    assert [json.loads(a["Payload"].read()) for a in answers] == [{"n": n} for n in range(4)]
    assert len({a["ResponseMetadata"]["RequestId"] for a in answers}) == len(answers)
    assert all(a["ExecutedVersion"] == "$LATEST" for a in answers)
    assert len(on_threads) == 1  # the cold start only
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=name, Qualifier="7", Payload=b"{}")
    assert len(on_threads) == 1  # a 404 is answered on the loop too

    release = threading.Event()

    def reset() -> None:
        with endpoint.gate.closed():
            release.wait(10)

    resetting = threading.Thread(target=reset)
    resetting.start()
    deadline = time.monotonic() + 10
    while not endpoint.gate._closed:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    threading.Timer(0.2, release.set).start()
    answer = lam.invoke(FunctionName=name, Payload=b'{"after": "reset"}')
    resetting.join(10)
    assert json.loads(answer["Payload"].read()) == {"after": "reset"}
    assert len(on_threads) == 2  # waited for the gate on a thread, not on the loop  # noqa: PLR2004
    lam.delete_function(FunctionName=name)


def test_dynamodb_reads_are_served_on_the_loop_unless_moto_is_busy(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = aws_client_factory("dynamodb", config=NO_RETRY)
    table, _ = create_keyed_table(dynamodb, "loop")
    dynamodb.put_item(TableName=table, Item={"k": {"S": "a"}, "v": {"N": "1"}})
    app = endpoint._app
    assert app is not None
    on_threads: list[str] = []
    handle = app.handle

    def counted(request: HttpRequest) -> HttpResponse:
        if threading.current_thread().name != "endpoint-server":  # the event loop's thread
            on_threads.append(str(request.header("x-amz-target")).rsplit(".", 1)[-1])
        return handle(request)

    monkeypatch.setattr(app, "handle", counted)
    query = {"TableName": table, "KeyConditionExpression": "k = :k",
             "ExpressionAttributeValues": {":k": {"S": "a"}}}
    assert dynamodb.get_item(TableName=table, Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "1"}
    assert dynamodb.query(**query)["Count"] == 1
    dynamodb.put_item(TableName=table, Item={"k": {"S": "b"}})
    assert on_threads == ["PutItem"]  # the reads were answered on the loop

    held, release = threading.Event(), threading.Event()

    def hold_moto() -> None:
        with DYNAMODB_LOCK:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_moto)
    holder.start()
    assert held.wait(10)
    threading.Timer(0.2, release.set).start()
    assert dynamodb.query(**query)["Count"] == 1  # waited for moto's lock on a thread
    holder.join(10)
    assert on_threads == ["PutItem", "Query"]
