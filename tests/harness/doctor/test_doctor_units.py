"""Doctor's parts without a stack: the read-only guard, policy evaluation, needs from infra/."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from harness.doctor.needs import component_roles, needs
from harness.doctor.policy import evaluate, parse_document
from harness.doctor.readonly import MutatingCallRefused, guard, is_read_only
from harness.stack.infra import ROOT, load_infra


@pytest.fixture(scope="module")
def infra():
    return load_infra(ROOT, region="ap-southeast-1", account_id="123456789012")


def unreachable(service: str):
    return boto3.session.Session().client(
        service,
        region_name="ap-southeast-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, connect_timeout=0.2),
    )


def test_readonly_guard_refuses_a_write_before_sending() -> None:
    client = guard(unreachable("dynamodb"))
    with pytest.raises(MutatingCallRefused, match="dynamodb:PutItem"):
        client.put_item(TableName="t", Item={"k": {"S": "v"}})


def test_readonly_guard_refuses_an_sqs_receive_that_would_hide_the_message() -> None:
    client = guard(unreachable("sqs"))
    with pytest.raises(MutatingCallRefused, match="ReceiveMessage"):
        client.receive_message(QueueUrl="http://127.0.0.1:9/1/q", VisibilityTimeout=30)


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("dynamodb", "DescribeTable", {}, True),
        ("dynamodb", "Query", {}, True),
        ("logs", "FilterLogEvents", {}, True),
        ("ecs", "UpdateService", {}, False),
        ("lambda", "UpdateEventSourceMapping", {}, False),
        ("sqs", "ReceiveMessage", {"VisibilityTimeout": 0}, True),
        ("sqs", "ReceiveMessage", {}, False),
        ("sqs", "PurgeQueue", {}, False),
    ],
)
def test_readonly_allows_only_reads(
    service: str, operation: str, params: dict, expected: bool
) -> None:
    assert is_read_only(service, operation, params) is expected


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": ["dynamodb:Query", "dynamodb:Get*"],
            "Resource": ["arn:aws:dynamodb:r:1:table/t", "arn:aws:dynamodb:r:1:table/t/index/*"],
        },
        {
            "Sid": "NoIndexB",
            "Effect": "Deny",
            "Action": "dynamodb:*",
            "Resource": "arn:aws:dynamodb:r:1:table/t/index/b",
        },
        {
            "Sid": "Cond",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
    ],
}


@pytest.mark.parametrize(
    ("action", "resource", "allowed", "sid"),
    [
        ("dynamodb:Query", "arn:aws:dynamodb:r:1:table/t", True, "Read"),
        ("DynamoDB:query", "arn:aws:dynamodb:r:1:table/t", True, "Read"),  # actions ignore case
        ("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/t", True, "Read"),
        ("dynamodb:Query", "arn:aws:dynamodb:r:1:table/t/index/a", True, "Read"),
        ("dynamodb:Query", "arn:aws:dynamodb:r:1:table/t/index/b", False, "NoIndexB"),  # Deny wins
        ("dynamodb:PutItem", "arn:aws:dynamodb:r:1:table/t", False, None),  # implicit deny
        ("dynamodb:Query", "arn:aws:dynamodb:r:1:table/T", False, None),  # ARNs keep case
    ],
)
def test_policy_evaluation(action: str, resource: str, allowed: bool, sid: str | None) -> None:
    decision = evaluate([POLICY], action, resource)
    assert (decision.allowed, decision.statement) == (allowed, sid)


def test_policy_condition_is_reported_not_evaluated() -> None:
    assert evaluate([POLICY], "sqs:SendMessage", "arn:aws:sqs:r:1:q").conditional


def test_policy_document_as_iam_returns_it() -> None:
    assert parse_document("%7B%22Statement%22%3A%20%5B%5D%7D") == {"Statement": []}


def test_needs_cover_every_component(infra) -> None:
    found = needs(infra, "ap-southeast-1", "123456789012", {})
    roles = component_roles(infra)
    assert set(roles.values()) == {n.role for n in found}
    pairs = {(n.role, n.action) for n in found}
    assert ("stream-processor-role", "dynamodb:GetRecords") in pairs
    assert ("stream-processor-role", "sqs:SendMessage") in pairs
    assert ("query-lambda-role", "dynamodb:Query") in pairs
    assert (roles["ECS task"], "lambda:InvokeFunction") in pairs


def test_needs_are_granted_by_the_policies_in_iam_tf(infra) -> None:
    """The roles as infra/terraform/iam.tf writes them allow everything the components need."""
    policies = {r.name: list(r.inline_policies.values()) for r in infra.roles}
    found = needs(infra, infra.region, infra.account_id, {})
    denied = [n for n in found if not evaluate(policies[n.role], n.action, n.resource).allowed]
    assert denied == []


def test_needs_catch_an_action_removed_from_a_policy(infra) -> None:
    role = next(r for r in infra.roles if r.name == "stream-processor-role")
    trimmed = []
    for document in role.inline_policies.values():
        statements = []
        for s in document["Statement"]:
            actions = [
                a
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                if a != "dynamodb:GetRecords"
            ]
            if actions:
                statements.append({**s, "Action": actions})
        trimmed.append({**document, "Statement": statements})
    found = needs(infra, infra.region, infra.account_id, {})
    denied = {
        n.action
        for n in found
        if n.role == role.name and not evaluate(trimmed, n.action, n.resource).allowed
    }
    assert denied == {"dynamodb:GetRecords"}
