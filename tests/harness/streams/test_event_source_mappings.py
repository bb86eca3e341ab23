"""The event-source-mapping API: handle() shapes, validation, state; boto3 on the endpoint."""

from __future__ import annotations

import io
import json
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from esm_fakes import (
    ACCOUNT,
    REGION,
    FakeRuntime,
    clients,
    create_source_table,
    create_target_table,
    put,
    scan_keys,
    wait_until,
)

import harness.streams.types
from harness.streams.batch import PollerTimings
from harness.streams.mappings import EventSourceMappings

BASE = "/2015-03-31/event-source-mappings"
STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/src/stream/2024-01-01T00:00:00.000"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"
FAST = PollerTimings(fallback_poll_s=0.2, retry_base_s=0.01, retry_max_s=0.05)


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    fake.register("fn", lambda event: None)
    fake.register("other", lambda event: None)
    return fake


@pytest.fixture
def api(moto_url: str, runtime: FakeRuntime) -> Iterator[EventSourceMappings]:
    """Mappings whose pollers are not started: the API alone."""
    esm = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                              runtime=runtime, timings=FAST)
    yield esm
    esm.stop()


def call(esm: EventSourceMappings, method: str, path: str = "", body: Any = None,
         **query: str) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    return esm.handle(method, BASE + path, query, raw)


def valid(**changes: Any) -> dict[str, Any]:
    return {"FunctionName": "fn", "EventSourceArn": STREAM,
            "StartingPosition": "TRIM_HORIZON"} | changes


def test_public_surface_exports_are_complete() -> None:
    import harness.streams.batch as batch
    import harness.streams.mappings as mappings
    import harness.streams.poller as poller
    import harness.streams.validation as validation

    for module in (mappings, poller, batch, validation, harness.streams.types):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


def test_create_returns_202_with_aws_shape_and_defaults(api):
    status, body = call(api, "POST", body=valid())
    assert status == 202
    assert body["State"] == "Creating"
    assert uuid.UUID(body["UUID"])
    assert body["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    assert body["EventSourceMappingArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{body['UUID']}")
    assert {k: body[k] for k in ("BatchSize", "MaximumBatchingWindowInSeconds",
                                 "ParallelizationFactor", "MaximumRetryAttempts",
                                 "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
                                 "FunctionResponseTypes", "DestinationConfig",
                                 "LastProcessingResult", "StartingPosition")} == {
        "BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
        "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1,
        "BisectBatchOnFunctionError": False, "FunctionResponseTypes": [],
        "DestinationConfig": {"OnFailure": {}}, "LastProcessingResult": "No records processed",
        "StartingPosition": "TRIM_HORIZON"}
    assert isinstance(body["LastModified"], float)


def test_create_with_every_setting_echoes_them(api):
    status, body = call(api, "POST", body=valid(
        FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn", BatchSize=10000,
        MaximumBatchingWindowInSeconds=300, ParallelizationFactor=10, MaximumRetryAttempts=10000,
        MaximumRecordAgeInSeconds=604800, BisectBatchOnFunctionError=True,
        FunctionResponseTypes=["ReportBatchItemFailures"], StartingPosition="LATEST",
        DestinationConfig={"OnFailure": {"Destination": QUEUE}}, Enabled=False))
    assert status == 202, body
    assert (body["BatchSize"], body["ParallelizationFactor"], body["StartingPosition"]) == (
        10000, 10, "LATEST")
    assert body["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE}}
    assert body["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert call(api, "GET", "/" + body["UUID"])[1]["State"] == "Disabled"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"StartingPosition": None}, "StartingPosition is required"),
        ({"StartingPosition": "AT_TIMESTAMP"}, "AT_TIMESTAMP"),
        ({"StartingPosition": "EARLIEST"}, "TRIM_HORIZON or LATEST"),
        ({"BatchSize": 0}, "batchSize"),
        ({"BatchSize": 10001}, "batchSize"),
        ({"BatchSize": "10"}, "must be an integer"),
        ({"BatchSize": True}, "must be an integer"),
        ({"MaximumBatchingWindowInSeconds": 301}, "maximumBatchingWindowInSeconds"),
        ({"ParallelizationFactor": 11}, "parallelizationFactor"),
        ({"ParallelizationFactor": 0}, "parallelizationFactor"),
        ({"MaximumRetryAttempts": -2}, "maximumRetryAttempts"),
        ({"MaximumRetryAttempts": 10001}, "maximumRetryAttempts"),
        ({"MaximumRecordAgeInSeconds": 59}, "-1 or between 60 and 604800"),
        ({"MaximumRecordAgeInSeconds": 604801}, "maximumRecordAgeInSeconds"),
        ({"BisectBatchOnFunctionError": "yes"}, "true or false"),
        ({"FunctionResponseTypes": ["Other"]}, "ReportBatchItemFailures"),
        ({"EventSourceArn": None}, "EventSourceArn is required"),
        ({"EventSourceArn": QUEUE}, "SQS event sources take no StartingPosition"),
        ({"EventSourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:topic"}, "Unsupported event source"),
        ({"EventSourceArn": "not-an-arn"}, "not a valid ARN"),
        ({"EventSourceArn": STREAM.replace(REGION, "us-east-1")}, "region"),
        ({"DestinationConfig": {"OnFailure": {"Destination": f"arn:aws:sns:{REGION}:"
                                                              f"{ACCOUNT}:topic"}}}, "SQS"),
        ({"DestinationConfig": {"OnSuccess": {"Destination": QUEUE}}}, "OnSuccess"),
        ({"FunctionName": "bad name!"}, "functionName"),
        ({"FunctionName": "fn:prod"}, "$LATEST"),
        ({"TumblingWindowInSeconds": 60}, "TumblingWindowInSeconds"),
        ({"FilterCriteria": {"Filters": [{"Pattern": "{}"}]}}, "FilterCriteria"),
        ({"Topics": ["t"]}, "does not apply"),
        ({"Batchsize": 5}, "Unknown parameter"),
    ],
)
def test_create_invalid_parameter_is_400_with_a_clear_message(api, changes, needle):
    request = {k: v for k, v in valid(**changes).items() if v is not None}
    status, body = call(api, "POST", body=request)
    assert status == 400, body
    assert body["__type"] == "InvalidParameterValueException" and body["Type"] == "User"
    assert needle in body["message"]
    assert call(api, "GET")[1]["EventSourceMappings"] == []


def test_create_unknown_function_is_404(api):
    status, body = call(api, "POST", body=valid(FunctionName="missing"))
    assert (status, body["__type"]) == (404, "ResourceNotFoundException")
    assert "missing" in body["message"]


def test_create_duplicate_mapping_is_409_conflict(api):
    first = call(api, "POST", body=valid())[1]
    status, body = call(api, "POST", body=valid(FunctionName="fn:$LATEST"))
    assert (status, body["__type"]) == (409, "ResourceConflictException")
    assert first["UUID"] in body["message"]


def test_update_to_a_function_already_mapped_to_the_stream_is_409(api):
    call(api, "POST", body=valid())
    second = call(api, "POST", body=valid(FunctionName="other"))[1]["UUID"]
    status, body = call(api, "PUT", f"/{second}", {"FunctionName": "fn"})
    assert (status, body["__type"]) == (409, "ResourceConflictException")
    assert call(api, "PUT", f"/{second}", {"FunctionName": "other", "BatchSize": 7})[0] == 202


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"])
def test_create_body_not_a_json_object_is_400(api, raw):
    status, body = call(api, "POST", body=raw)
    assert (status, body["__type"]) == (400, "InvalidRequestContentException")


def test_get_update_delete_unknown_uuid_is_404(api):
    for method in ("GET", "PUT", "DELETE"):
        status, body = call(api, method, f"/{uuid.uuid4()}", {"BatchSize": 5})
        assert (status, body["__type"]) == (404, "ResourceNotFoundException"), method


def test_unsupported_method_is_405(api):
    status, body = call(api, "PATCH")
    assert status == 405 and "PATCH" in body["message"]


def test_list_filters_by_function_and_source_and_pages(api):
    other_stream = STREAM.replace("table/src", "table/src2")
    ids = [call(api, "POST", body=valid(**c))[1]["UUID"] for c in (
        {}, {"FunctionName": "other"}, {"EventSourceArn": other_stream})]
    assert [m["UUID"] for m in call(api, "GET")[1]["EventSourceMappings"]] == ids
    by_function = call(api, "GET", FunctionName="fn")[1]["EventSourceMappings"]
    assert [m["UUID"] for m in by_function] == [ids[0], ids[2]]
    by_arn = call(api, "GET", FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other")
    assert [m["UUID"] for m in by_arn[1]["EventSourceMappings"]] == [ids[1]]
    by_source = call(api, "GET", EventSourceArn=other_stream)[1]["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == [ids[2]]
    seen, marker = [], None
    while True:
        query = {"MaxItems": "2"} | ({"Marker": marker} if marker else {})
        status, page = call(api, "GET", **query)
        assert status == 200 and len(page["EventSourceMappings"]) <= 2
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        marker = page.get("NextMarker")
        if marker is None:
            break
    assert seen == ids
    assert call(api, "GET", MaxItems="0")[0] == 400
    assert call(api, "GET", Marker="abc")[0] == 400


def test_update_changes_settings_and_keeps_others(api):
    mapping_id = call(api, "POST", body=valid(BatchSize=10, MaximumRetryAttempts=3))[1]["UUID"]
    status, body = call(api, "PUT", f"/{mapping_id}", {
        "BatchSize": 20, "BisectBatchOnFunctionError": True, "FunctionName": "other",
        "DestinationConfig": {"OnFailure": {"Destination": QUEUE}}})
    assert status == 202, body
    assert (body["BatchSize"], body["MaximumRetryAttempts"]) == (20, 3)
    assert body["BisectBatchOnFunctionError"] is True
    assert body["FunctionArn"].endswith(":function:other")
    body = call(api, "PUT", f"/{mapping_id}", {"DestinationConfig": {"OnFailure": {}}})[1]
    assert body["DestinationConfig"] == {"OnFailure": {}}
    assert call(api, "GET", f"/{mapping_id}")[1]["BatchSize"] == 20


@pytest.mark.parametrize(("update", "needle"), [
    ({"StartingPosition": "LATEST"}, "cannot be changed"),
    ({"EventSourceArn": STREAM}, "cannot be changed"),
    ({"BatchSize": 0}, "batchSize"),
    ({"Enabled": "no"}, "true or false"),
])
def test_update_invalid_is_400_and_changes_nothing(api, update, needle):
    mapping_id = call(api, "POST", body=valid())[1]["UUID"]
    status, body = call(api, "PUT", f"/{mapping_id}", update)
    assert status == 400 and needle in body["message"]
    assert call(api, "GET", f"/{mapping_id}")[1]["BatchSize"] == 100


def test_delete_answers_deleting_and_forgets_the_mapping(api):
    mapping_id = call(api, "POST", body=valid())[1]["UUID"]
    status, body = call(api, "DELETE", f"/{mapping_id}")
    assert (status, body["State"]) == (202, "Deleting")
    assert call(api, "GET", f"/{mapping_id}")[0] == 404
    assert call(api, "POST", body=valid())[0] == 202  # no conflict with the deleted one


def test_state_goes_creating_enabled_disabling_disabled_with_a_real_stream(
        moto_url, runtime):
    aws = clients(moto_url)
    stream_arn = create_source_table(aws["dynamodb"], f"src-{uuid.uuid4().hex[:8]}")
    esm = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                              runtime=runtime, timings=FAST)
    esm.start()
    try:
        status, body = call(esm, "POST", body=valid(EventSourceArn=stream_arn))
        assert (status, body["State"]) == (202, "Creating")
        mapping_id = body["UUID"]
        wait_until(lambda: call(esm, "GET", f"/{mapping_id}")[1]["State"] == "Enabled")
        assert call(esm, "PUT", f"/{mapping_id}", {"BatchSize": 5})[1]["State"] == "Updating"
        assert call(esm, "GET", f"/{mapping_id}")[1]["State"] == "Enabled"
        assert call(esm, "PUT", f"/{mapping_id}", {"Enabled": False})[1]["State"] == "Disabling"
        wait_until(lambda: call(esm, "GET", f"/{mapping_id}")[1]["State"] == "Disabled")
        assert call(esm, "PUT", f"/{mapping_id}", {"Enabled": True})[1]["State"] == "Enabling"
        wait_until(lambda: call(esm, "GET", f"/{mapping_id}")[1]["State"] == "Enabled")
    finally:
        esm.stop()


# -- through boto3's lambda client on the embedded endpoint ------------------------------------

FUNCTION_CODE = textwrap.dedent('''
    import os
    import boto3

    TARGET = os.environ["TARGET_TABLE"]
    MARKER = os.environ["CRASH_MARKER"]
    dynamodb = boto3.client("dynamodb")

    def handler(event, context):
        for record in event["Records"]:
            image = record["dynamodb"]["NewImage"]
            if image["v"]["S"] == "crash" and not os.path.exists(MARKER):
                open(MARKER, "w").close()
                os._exit(9)  # the worker process dies mid-batch
            image["source_region"] = {"S": record["awsRegion"]}
            dynamodb.put_item(TableName=TARGET, Item=image)
''')


@pytest.fixture(scope="module")
def lambda_stack(endpoint: Any, aws_client_factory: Any, tmp_path_factory: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    iam = aws_client_factory("iam")
    role = iam.create_role(RoleName=f"esm-{suffix}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]
    }))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("copy_fn.py", FUNCTION_CODE)
    dynamodb = aws_client_factory("dynamodb")
    source, target = f"esm-src-{suffix}", f"esm-dst-{suffix}"
    stream_arn = create_source_table(dynamodb, source)
    create_target_table(dynamodb, target)
    marker = Path(tmp_path_factory.mktemp("esm")) / "crashed"
    lam = aws_client_factory("lambda")
    lam.create_function(
        FunctionName=f"copy-{suffix}", Runtime="python3.11", Role=role,
        Handler="copy_fn.handler", Code={"ZipFile": buffer.getvalue()}, Timeout=30,
        Environment={"Variables": {"TARGET_TABLE": target, "CRASH_MARKER": str(marker)}})
    return {"lambda": lam, "dynamodb": dynamodb, "function": f"copy-{suffix}",
            "source": source, "target": target, "stream_arn": stream_arn, "marker": marker}


def test_endpoint_boto3_mapping_copies_a_table_and_survives_a_killed_worker(lambda_stack):
    lam, dynamodb = lambda_stack["lambda"], lambda_stack["dynamodb"]
    created = lam.create_event_source_mapping(
        FunctionName=lambda_stack["function"], EventSourceArn=lambda_stack["stream_arn"],
        StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumRetryAttempts=5)
    assert created["State"] == "Creating"
    mapping_id = created["UUID"]
    wait_until(lambda: lam.get_event_source_mapping(UUID=mapping_id)["State"] == "Enabled")
    keys = [f"k{i}" for i in range(12)]
    for key in keys:
        put(dynamodb, lambda_stack["source"], key, v="crash" if key == "k5" else "ok")
    wait_until(lambda: scan_keys(dynamodb, lambda_stack["target"]) == set(keys), timeout=30,
               what="every record copied after the crash")
    assert lambda_stack["marker"].exists()
    item = dynamodb.get_item(TableName=lambda_stack["target"], Key={"pk": {"S": "k0"}})["Item"]
    assert item["source_region"] == {"S": REGION}
    listed = lam.list_event_source_mappings(FunctionName=lambda_stack["function"])
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [mapping_id]
    assert lam.get_event_source_mapping(UUID=mapping_id)["LastProcessingResult"] == "OK"
    updated = lam.update_event_source_mapping(UUID=mapping_id, Enabled=False)
    assert updated["State"] == "Disabling"
    wait_until(lambda: lam.get_event_source_mapping(UUID=mapping_id)["State"] == "Disabled")
    assert lam.delete_event_source_mapping(UUID=mapping_id)["State"] == "Deleting"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=mapping_id)


def test_endpoint_boto3_invalid_mapping_is_an_aws_error(lambda_stack):
    lam = lambda_stack["lambda"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as error:
        lam.create_event_source_mapping(
            FunctionName=lambda_stack["function"], EventSourceArn=lambda_stack["stream_arn"],
            StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=0)
    assert "AT_TIMESTAMP" in str(error.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_event_source_mapping(
            FunctionName="no-such-function", EventSourceArn=lambda_stack["stream_arn"],
            StartingPosition="LATEST")


class PrewarmingRuntime(FakeRuntime):
    """A runtime whose prewarm (one environment forked ahead of the first batch) takes a while."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def prewarm(self, name: str) -> None:
        self.events.append("prewarm started")
        time.sleep(0.5)  # a fork server busy preparing another function
        self.events.append("prewarm ended")

    def invoke(self, name: str, payload: bytes, **options: Any) -> Any:
        if options.get("invocation_type") != "DryRun":  # DryRun: the create's existence check
            self.events.append("invoke")
        return super().invoke(name, payload, **options)


def test_records_already_in_the_stream_reach_the_prewarmed_environment_not_a_second_one(
        moto_url):
    """A TRIM_HORIZON mapping created after the writes (the stack's seed) invokes only once its
    prewarmed environment exists: invoking during the prewarm would start a second one."""
    runtime = PrewarmingRuntime()
    runtime.register("fn", lambda event: None)
    aws = clients(moto_url)
    table = f"src-{uuid.uuid4().hex[:8]}"
    stream_arn = create_source_table(aws["dynamodb"], table)
    put(aws["dynamodb"], table, "written-before-the-mapping")
    esm = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                              runtime=runtime, timings=FAST)
    esm.start()
    try:
        status, _ = call(esm, "POST", body=valid(EventSourceArn=stream_arn))
        assert status == 202
        wait_until(lambda: runtime.invocations("fn"), what="the record's batch")
        assert runtime.events[:3] == ["prewarm started", "prewarm ended", "invoke"]
    finally:
        esm.stop()
