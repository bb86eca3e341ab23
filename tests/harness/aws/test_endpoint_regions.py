"""Lambda and event source mappings follow the request's region; SQS → Lambda end to end."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from marking_functions import NO_RETRY, create_marking_function, read_marks, wait_until

from tests.harness.conftest import create_keyed_table

HANDLER = textwrap.dedent("""
    import json, os

    def handler(event, context):
        with open(os.environ["MARKS"], "a") as marks:
            for record in event.get("Records", []):
                if record.get("eventSource") == "aws:sqs":
                    marks.write("sqs " + record["body"] + "\\n")
                else:
                    key = record["dynamodb"]["Keys"]["k"]["S"]
                    marks.write("ddb " + key + " " + record["awsRegion"] + "\\n")
            marks.write("region " + os.environ["AWS_REGION"] + "\\n")
        return None
""")


def _wait_for(path: Path, line: str) -> None:
    wait_until(lambda: line in read_marks(path))


def test_lambda_and_stream_mappings_follow_the_request_region(
    aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    east = "us-east-1"
    lam_east = aws_client_factory("lambda", region=east, config=NO_RETRY)
    lam_home = aws_client_factory("lambda", config=NO_RETRY)
    name = create_marking_function(aws_client_factory, HANDLER, marks, east)
    with pytest.raises(lam_home.exceptions.ResourceNotFoundException):
        lam_home.invoke(FunctionName=name, Payload=b"{}")
    lam_east.invoke(FunctionName=name, Payload=b"{}")
    _wait_for(marks, f"region {east}")  # the function runs in its own region

    dynamodb = aws_client_factory("dynamodb", region=east)
    table, stream = create_keyed_table(dynamodb, "src", stream=True)
    mapping = lam_east.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream, StartingPosition="TRIM_HORIZON"
    )
    assert mapping["FunctionArn"].split(":")[3] == east
    uuid_ = mapping["UUID"]
    assert lam_east.get_event_source_mapping(UUID=uuid_)["EventSourceArn"] == stream
    assert [m["UUID"] for m in lam_east.list_event_source_mappings()["EventSourceMappings"]] == [
        uuid_
    ]
    with pytest.raises(lam_home.exceptions.ResourceNotFoundException):
        lam_home.get_event_source_mapping(UUID=uuid_)
    assert uuid_ not in [
        m["UUID"] for m in lam_home.list_event_source_mappings()["EventSourceMappings"]
    ]
    dynamodb.put_item(TableName=table, Item={"k": {"S": "east-1"}})
    _wait_for(marks, f"ddb east-1 {east}")
    assert lam_east.update_event_source_mapping(UUID=uuid_, BatchSize=5)["BatchSize"] == 5
    assert lam_east.delete_event_source_mapping(UUID=uuid_)["State"] == "Deleting"
    lam_east.delete_function(FunctionName=name)


def test_sqs_messages_reach_the_function_through_the_endpoint(
    aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    lam = aws_client_factory("lambda", config=NO_RETRY)
    sqs = aws_client_factory("sqs")
    name = create_marking_function(aws_client_factory, HANDLER, marks)
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    mapping = lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=arn, Tags={"team": "read-side"}
    )
    assert mapping["BatchSize"] == 10 and "StartingPosition" not in mapping
    mapping_arn = mapping["EventSourceMappingArn"]
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"team": "read-side"}
    lam.tag_resource(Resource=mapping_arn, Tags={"stage": "test"})
    lam.untag_resource(Resource=mapping_arn, TagKeys=["team"])
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"stage": "test"}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"hello": "sqs"}))
    _wait_for(marks, 'sqs {"hello": "sqs"}')
    deadline = time.monotonic() + 30
    while True:  # deleted once the function succeeded
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if attributes["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert attributes["ApproximateNumberOfMessages"] == "0"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName=name)


def test_lambda_and_sqs_mappings_follow_the_request_account(
    aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    other = "111122223333"

    def in_other_account(service: str, **kwargs: Any) -> Any:
        client = aws_client_factory(service, **kwargs)
        client.meta.events.register(
            "before-sign", lambda request, **_: request.headers.__setitem__(
                "x-moto-account-id", other))
        return client

    marks = tmp_path / "marks.txt"
    name = create_marking_function(in_other_account, HANDLER, marks)
    lam = in_other_account("lambda", config=NO_RETRY)
    sqs = in_other_account("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    assert arn.split(":")[4] == other
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)
    assert mapping["FunctionArn"].split(":")[4] == other
    home = aws_client_factory("lambda", config=NO_RETRY)
    with pytest.raises(home.exceptions.ResourceNotFoundException):
        home.get_event_source_mapping(UUID=mapping["UUID"])
    sqs.send_message(QueueUrl=url, MessageBody="other account")
    _wait_for(marks, "sqs other account")  # the poller read the queue of that account
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName=name)
