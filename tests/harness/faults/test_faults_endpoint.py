"""Faults acting on the embedded endpoint's real Lambda runtime and DynamoDB request path."""

from __future__ import annotations

import io
import json
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.aws.endpoint import Endpoint
from harness.faults.client import FaultApiError, FaultsClient

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30)
HANDLER = textwrap.dedent("""
    import time

    def handler(event, context):
        if event.get("sleep"):
            time.sleep(event["sleep"])
        seen = [r["dynamodb"]["SequenceNumber"] for r in event.get("Records", [])]
        return {"batchItemFailures": [], "seen": seen}
""")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


@pytest.fixture()
def faults(endpoint: Endpoint) -> Iterator[FaultsClient]:
    with FaultsClient(endpoint.url) as client:
        client.clear()
        yield client
        client.clear()


@pytest.fixture(scope="module")
def lam(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("lambda", config=NO_RETRY)


@pytest.fixture(scope="module")
def function(lam: Any, aws_client_factory: Callable[..., Any]) -> Iterator[str]:
    iam = aws_client_factory("iam")
    role = iam.create_role(
        RoleName=f"faults-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    name = f"faulty-{uuid.uuid4().hex[:6]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        Timeout=1,
    )
    yield name
    lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def table(keyed_table: str) -> str:
    return keyed_table


def _invoke(lam: Any, name: str, event: dict[str, Any]) -> tuple[str | None, Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read() or b"null")


def _records(*keys: str) -> dict[str, Any]:
    return {
        "Records": [
            {"dynamodb": {"Keys": {"transaction_id": {"S": key}}, "SequenceNumber": str(n)}}
            for n, key in enumerate(keys, start=1)
        ]
    }


def test_bad_specs_answer_400_with_one_line_and_nothing_is_added(
    faults: FaultsClient, function: str
) -> None:
    for spec, reason in [
        ({"kind": "fail", "function": "no-such-fn"}, "unknown function 'no-such-fn'"),
        ({"kind": "throttle", "table": "no-such-table"}, "unknown table 'no-such-table'"),
        ({"kind": "fail", "function": function, "fraction": 2}, "fraction must be from 0 to 1"),
        ({"kind": "fail", "function": function, "keys": ["oops"]}, "malformed key pattern"),
    ]:
        with pytest.raises(FaultApiError, match=reason):
            faults.add(spec)
    assert faults.list()["faults"] == []
    with pytest.raises(FaultApiError, match="no fault 'f999'"):
        faults.get("f999")


def test_fail_unhandled_fires_for_its_count_then_function_runs(
    faults: FaultsClient, lam: Any, function: str
) -> None:
    fault = faults.add(kind="fail", function=function, count=1)
    error, payload = _invoke(lam, function, {})
    assert (error, payload["errorType"]) == ("Unhandled", "InjectedFault")
    assert _invoke(lam, function, {}) == (None, {"batchItemFailures": [], "seen": []})
    assert faults.get(fault["id"])["fired"] == 1 and faults.get(fault["id"])["seen"] == 2


def test_fail_partial_poison_names_record_and_handler_never_sees_it(
    faults: FaultsClient, lam: Any, function: str
) -> None:
    faults.add(kind="fail", function=function, mode="partial", keys=["transaction_id=poison-*"])
    error, payload = _invoke(lam, function, _records("good-a", "poison-1", "good-b"))
    assert error is None
    assert payload == {"batchItemFailures": [{"itemIdentifier": "2"}], "seen": ["1", "3"]}
    assert _invoke(lam, function, _records("good-c"))[1]["batchItemFailures"] == []


def test_kill_worker_mid_invocation_is_runtime_exit_error(
    faults: FaultsClient, lam: Any, function: str
) -> None:
    fault = faults.add(kind="kill-worker", function=function, delay_ms=200)
    error, payload = _invoke(lam, function, {"sleep": 0.8})
    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.ExitError")
    assert "signal: killed" in payload["errorMessage"]
    assert faults.get(fault["id"])["fired"] == 1


def test_timeout_fault_runs_past_the_function_timeout(
    faults: FaultsClient, lam: Any, function: str
) -> None:
    assert _invoke(lam, function, {})[0] is None  # a warm, initialised environment
    faults.add(kind="timeout", function=function, count=1)
    error, payload = _invoke(lam, function, {})
    assert (error, payload["errorType"]) == ("Unhandled", "Sandbox.Timedout")
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert _invoke(lam, function, {})[0] is None  # a new environment serves the next one


def test_delay_fault_pauses_the_worker_then_it_answers(
    faults: FaultsClient, lam: Any, function: str
) -> None:
    faults.add(kind="delay", function=function, delay_ms=400)
    started = time.monotonic()
    assert _invoke(lam, function, {})[0] is None
    assert time.monotonic() - started >= 0.4


def test_throttle_answers_aws_error_and_standard_retries_get_through(
    faults: FaultsClient, table: str, aws_client_factory: Callable[..., Any]
) -> None:
    fault = faults.add(kind="throttle", table=table, operations=["PutItem"], count=2)
    item = {"k": {"S": "a"}}
    plain = aws_client_factory("dynamodb", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        plain.put_item(TableName=table, Item=item)
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Item" not in plain.get_item(TableName=table, Key=item)  # nothing was written
    retrying = aws_client_factory(
        "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
    answer = retrying.put_item(TableName=table, Item=item)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert faults.get(fault["id"])["fired"] == 2
    assert faults.list()["fired_by_kind"] == {"throttle": 2}


def test_watch_counts_an_older_image_written_over_a_newer_one(
    faults: FaultsClient, table: str, aws_client_factory: Callable[..., Any]
) -> None:
    watch = faults.add(kind="watch", table=table)
    client = aws_client_factory("dynamodb")
    for key, sequence in [("w1", "005"), ("w1", "007"), ("w2", "001"), ("w1", "006")]:
        client.put_item(TableName=table, Item={"k": {"S": key}, "source_sequence": {"S": sequence}})
    assert faults.get(watch["id"])["fired"] == 1
    client.delete_item(TableName=table, Key={"k": {"S": "w1"}})
    for sequence in ("005", "006", "007", "004"):  # re-created from older images, then newer
        client.put_item(
            TableName=table, Item={"k": {"S": "w1"}, "source_sequence": {"S": sequence}}
        )
    assert (faults.get(watch["id"])["fired"], faults.get(watch["id"])["resurrected"]) == (2, 2)


def test_clear_removes_every_fault(faults: FaultsClient, function: str, table: str) -> None:
    faults.add(kind="fail", function=function, fraction=0.5)
    faults.add(kind="throttle", table=table, fraction=0.1)
    assert len(faults.list()["faults"]) == 2
    assert faults.clear() == 2 and faults.list()["faults"] == []
