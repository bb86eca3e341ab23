"""Item 9 on the session's stack: PASS with IAM enforced; FAIL naming the role, action and
resource when a grant is taken away on the running endpoint; 9a not PASS with enforcement off."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from harness.verify.checks import iam, iam_live
from harness.verify.model import Status
from harness.verify.target import Options, Target

ROOT = Path(__file__).resolve().parents[2]
TASK_ROLE, TASK_POLICY = "query-service-task-role", "query-service-task"


@pytest.fixture
def target(stack) -> Target:
    if stack.stack is None:
        pytest.skip("changing the endpoint's IAM needs a stack this session started")
    state = stack.stack.state()
    return Target(state["gateway_url"], state["edge_url"], state["region"], stack=stack.stack)


def _parts(result) -> dict[str, str]:
    return dict(result.evidence.tables[0].rows)


def test_item9_passes_enforced_and_fails_when_the_task_role_loses_invoke(target, aws) -> None:
    options = Options(root=ROOT)
    with iam_live.enforced_run(target) as on:
        assert on
        result = iam.check_least_privilege(target, options)
        assert result.status is Status.PASS, result.evidence.failures
        original = aws.iam.get_role_policy(RoleName=TASK_ROLE, PolicyName=TASK_POLICY)
        narrowed = {"Version": "2012-10-17", "Statement": [
            {"Sid": "GetOnly", "Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"}]}
        aws.iam.put_role_policy(RoleName=TASK_ROLE, PolicyName=TASK_POLICY,
                                PolicyDocument=json.dumps(narrowed))
        try:
            answer = httpx.post(f"{target.gateway_url}/query/user", json={"user_id": "u-iam"},
                                timeout=30)
            assert answer.status_code >= 500  # the service could not invoke the query Lambda
            broken = iam.check_least_privilege(target, options)
        finally:
            aws.iam.put_role_policy(RoleName=TASK_ROLE, PolicyName=TASK_POLICY,
                                    PolicyDocument=json.dumps(original["PolicyDocument"]))
    assert broken.status is Status.FAIL
    assert any(f.startswith(f"9b: {TASK_ROLE} was denied lambda:InvokeFunction on arn:aws:lambda:")
               and f.split(" on ")[1].split(" ")[0].endswith(":function:query-lambda")
               for f in broken.evidence.failures), broken.evidence.failures
    assert _parts(broken)["b"] == "FAIL"


def test_item9a_is_not_pass_with_enforcement_off(target) -> None:
    previous = httpx.put(f"{target.edge_url}/_harness/iam", json={"enforce": False}).json()
    try:
        result = iam.check_least_privilege(target, Options(root=ROOT))
    finally:
        httpx.put(f"{target.edge_url}/_harness/iam", json={"enforce": previous["previous"]})
    assert result.status is not Status.PASS
    assert _parts(result)["a"] == "FAIL"
    assert any("IAM is not enforced" in f for f in result.evidence.failures)
