from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from harness.aws import patches
from harness.aws.iam_policies import LazyManagedPolicies

BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
     "Action": "sts:AssumeRole"}]})


def _fresh_backend() -> Any:
    patches.apply()
    from moto.iam.models import IAMBackend

    return IAMBackend(region_name="global", account_id="210987654321")


def test_a_new_iam_backend_parses_no_managed_policy_until_one_is_used() -> None:
    backend = _fresh_backend()
    assert isinstance(backend.managed_policies, LazyManagedPolicies)
    assert not backend.managed_policies.loaded
    backend.create_role("r", TRUST, "/", None, "", [], None)  # what `up` asks IAM for
    assert not backend.managed_policies.loaded
    assert BASIC in backend.managed_policies  # the first use loads them
    assert backend.managed_policies.loaded
    assert len(backend.aws_managed_policies) == len(backend.managed_policies) > 1000


def test_managed_policies_answer_as_before_once_used(aws_client_factory: Callable[..., Any]) -> None:
    iam = aws_client_factory("iam", aws_access_key_id="AKIAPOLICIES00000001",
                             aws_secret_access_key="x",
                             region="ap-southeast-1")
    iam.create_policy(PolicyName="own-first", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}))
    iam.create_role(RoleName="lazy-policies-role", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="lazy-policies-role", PolicyArn=BASIC)
    attached = iam.list_attached_role_policies(RoleName="lazy-policies-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [BASIC]
    assert iam.get_policy(PolicyArn=BASIC)["Policy"]["AttachmentCount"] >= 1
    names = [
        p["PolicyName"]
        for page in iam.get_paginator("list_policies").paginate()
        for p in page["Policies"]
    ]
    # AWS's own first, then the account's, as moto lists them without the lazy load
    assert "AWSLambdaBasicExecutionRole" in names and names[-1] == "own-first"
