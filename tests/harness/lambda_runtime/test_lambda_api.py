"""The Lambda API of the endpoint through boto3: control plane kept by moto, Invoke run by us."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.harness.conftest import create_keyed_table

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30)

HANDLER = textwrap.dedent("""
    import json, os, time
    from pathlib import Path

    def handler(event, context):
        print("got", json.dumps(event, sort_keys=True))
        if event.get("fail"):
            raise KeyError("boom")
        if event.get("touch"):
            Path(event["touch"]).write_text(context.aws_request_id)
        if event.get("sleep"):
            time.sleep(event["sleep"])
        custom = context.client_context.custom if context.client_context else None
        return {"version": VERSION, "env": os.environ.get("GREETING"), "custom": custom,
                "name": context.function_name, "memory": context.memory_limit_in_mb}
""")


def _zip(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"VERSION = {version!r}\n" + HANDLER)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role(aws_client_factory: Callable[..., Any]) -> str:
    iam = aws_client_factory("iam")
    name = f"lambda-role-{uuid.uuid4().hex[:6]}"
    arn = str(
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
    )
    iam.attach_role_policy(
        RoleName=name, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    )
    return arn


@pytest.fixture()
def lam(aws_client_factory: Callable[..., Any]) -> Any:
    return aws_client_factory("lambda", config=NO_RETRY)


@pytest.fixture()
def function(lam: Any, role: str) -> Iterator[str]:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip("v1")},
        Timeout=10,
        Environment={"Variables": {"GREETING": "hello"}},
    )
    yield name
    try:
        lam.delete_function(FunctionName=name)  # stops its warm workers
    except lam.exceptions.ResourceNotFoundException:
        pass


def _invoke(
    lam: Any, name: str, event: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_invoke_request_response_runs_handler_with_environment(lam: Any, function: str) -> None:
    response, result = _invoke(lam, function, {"a": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert result == {
        "version": "v1",
        "env": "hello",
        "custom": None,
        "name": function,
        "memory": "128",
    }  # a string, as in the AWS runtime


def test_invoke_by_arn_with_latest_qualifier_and_client_context(lam: Any, function: str) -> None:
    arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    context = base64.b64encode(json.dumps({"custom": {"request_id": "r-1"}}).encode()).decode()
    response, result = _invoke(lam, arn, {}, Qualifier="$LATEST", ClientContext=context)
    assert response["StatusCode"] == 200
    assert result["custom"] == {"request_id": "r-1"}


def test_invoke_event_returns_202_and_runs_later(lam: Any, function: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    response, result = _invoke(lam, function, {"touch": str(marker)}, InvocationType="Event")
    assert response["StatusCode"] == 202 and result is None
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_invoke_dry_run_returns_204_without_running(
    lam: Any, function: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    response, _ = _invoke(lam, function, {"touch": str(marker)}, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    _invoke(lam, function, {})  # a later synchronous call has run; the dry run never did
    assert not marker.exists()


def test_invoke_handler_error_is_unhandled_function_error(lam: Any, function: str) -> None:
    response, result = _invoke(lam, function, {"fail": True})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "KeyError" and "boom" in result["errorMessage"]
    assert isinstance(result["stackTrace"], list)


def test_invoke_tail_returns_log_result(lam: Any, function: str) -> None:
    response, _ = _invoke(lam, function, {"tail": 1}, LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    assert 'got {"tail": 1}' in log
    assert "START RequestId:" in log and "END RequestId:" in log and "REPORT RequestId:" in log


def test_invoke_logs_reach_cloudwatch(
    lam: Any, function: str, aws_client_factory: Callable[..., Any]
) -> None:
    response, _ = _invoke(lam, function, {"cw": "yes"})
    logs = aws_client_factory("logs")
    group = f"/aws/lambda/{function}"
    messages: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("REPORT" in m for m in messages):
        if logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
        time.sleep(0.05)
    assert any(m.startswith("START RequestId:") for m in messages)
    assert 'got {"cw": "yes"}' in messages
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams[0]["logStreamName"].split("/")[3].startswith("[$LATEST]")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("does-not-exist", {}),
        (None, {"Qualifier": "7"}),
    ],
)
def test_invoke_unknown_function_or_version_is_404(
    lam: Any, function: str, name: str | None, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name or function, Payload=b"{}", **kwargs)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Function not found" in caught.value.response["Error"]["Message"]


def test_invoke_payload_over_6_mb_is_413(lam: Any, function: str) -> None:
    payload = json.dumps({"blob": "x" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=function, Payload=payload)
    assert caught.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_invoke_payload_not_json_is_400(lam: Any, function: str) -> None:
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=function, Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invoke_beyond_reserved_concurrency_is_429(lam: Any, function: str) -> None:
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=1)
    started = threading.Event()

    def slow() -> None:
        started.set()
        _invoke(lam, function, {"sleep": 1.5})

    worker = threading.Thread(target=slow)
    worker.start()
    started.wait()
    time.sleep(0.5)
    try:
        with pytest.raises(ClientError) as caught:
            lam.invoke(FunctionName=function, Payload=b"{}")
        assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        worker.join()


def test_control_plane_keeps_aws_shapes_and_updates_runtime(lam: Any, function: str) -> None:
    configuration = lam.get_function_configuration(FunctionName=function)
    assert configuration["Handler"] == "app.handler" and configuration["Runtime"] == "python3.12"
    assert configuration["State"] == "Active" and configuration["Timeout"] == 10
    assert "Location" in lam.get_function(FunctionName=function)["Code"]
    assert function in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.update_function_code(FunctionName=function, ZipFile=_zip("v2"))
    lam.update_function_configuration(
        FunctionName=function, Environment={"Variables": {"GREETING": "bonjour"}}
    )
    _, result = _invoke(lam, function, {})
    assert (result["version"], result["env"]) == ("v2", "bonjour")
    lam.delete_function(FunctionName=function)
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=function, Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_create_function_with_bad_zip_is_rejected(lam: Any, role: str) -> None:
    with pytest.raises(ClientError) as caught:
        lam.create_function(
            FunctionName=f"bad-{uuid.uuid4().hex[:6]}",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"not a zip"},
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_event_source_mapping_is_served_by_harness_not_moto(
    lam: Any, function: str, aws_client_factory: Callable[..., Any], tmp_path: Path, endpoint: Any
) -> None:
    if endpoint.mappings is None:
        pytest.skip(endpoint.mappings_unavailable)
    dynamodb = aws_client_factory("dynamodb")
    table, stream = create_keyed_table(dynamodb, "esm", stream=True)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=function, StartingPosition="TRIM_HORIZON"
    )
    try:
        from moto.awslambda.models import lambda_backends

        assert not lambda_backends["123456789012"]["ap-southeast-1"]._event_source_mappings
        dynamodb.put_item(TableName=table, Item={"k": {"S": "1"}})
        logs = aws_client_factory("logs")
        deadline, delivered = time.monotonic() + 20, False
        while not delivered and time.monotonic() < deadline:
            try:
                events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
            except logs.exceptions.ResourceNotFoundException:  # no log line written yet
                events = []
            delivered = any('"eventName": "INSERT"' in e["message"] for e in events)
            time.sleep(0.05)
        assert delivered
    finally:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
