from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from botocore.exceptions import ClientError

from harness.aws.local_sts import InProcessSts

if TYPE_CHECKING:
    from harness.aws.endpoint import Endpoint

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}
    ],
}


def _sts(endpoint: Endpoint) -> InProcessSts:
    app = endpoint._app
    assert app is not None
    return InProcessSts(app.handle, host=f"127.0.0.1:{endpoint.port}", region=endpoint.region)


def test_in_process_assume_role_answers_as_the_boto3_client_does(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    iam = aws_client_factory("iam")
    arn = iam.create_role(RoleName="local-sts-probe", AssumeRolePolicyDocument=json.dumps(TRUST))[
        "Role"
    ]["Arn"]
    ours = _sts(endpoint).assume_role(RoleArn=arn, RoleSessionName="fn", DurationSeconds=900)
    theirs = aws_client_factory("sts").assume_role(
        RoleArn=arn, RoleSessionName="fn", DurationSeconds=900
    )
    assert set(ours["Credentials"]) == set(theirs["Credentials"])
    assert ours["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert ours["Credentials"]["SessionToken"]
    # the same lifetime, as a timezone-aware datetime (RoleCredentials renews by it)
    lifetime = ours["Credentials"]["Expiration"] - theirs["Credentials"]["Expiration"]
    assert abs(lifetime.total_seconds()) < 60
    assert ours["AssumedRoleUser"]["Arn"].endswith(":assumed-role/local-sts-probe/fn")
    # the session it made is one the endpoint knows: a call signed with it is served
    who = aws_client_factory(
        "sts",
        aws_access_key_id=ours["Credentials"]["AccessKeyId"],
        aws_secret_access_key=ours["Credentials"]["SecretAccessKey"],
        aws_session_token=ours["Credentials"]["SessionToken"],
    ).get_caller_identity()
    assert who["Arn"] == ours["AssumedRoleUser"]["Arn"]


def test_in_process_assume_role_raises_the_client_error_boto3_raises(
    endpoint: Endpoint, aws_client_factory: Callable[..., Any]
) -> None:
    app = endpoint._app
    assert app is not None
    stranger = InProcessSts(
        app.handle, host=f"127.0.0.1:{endpoint.port}", region=endpoint.region,
        access_key="AKIASTRANGER00000000",
    )
    boto = aws_client_factory(
        "sts", aws_access_key_id="AKIASTRANGER00000000", aws_secret_access_key="x"
    )
    arn = "arn:aws:iam::123456789012:role/local-sts-probe"
    previous = httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": True}).json()
    try:
        with pytest.raises(ClientError) as ours:
            stranger.assume_role(RoleArn=arn, RoleSessionName="fn")
        with pytest.raises(ClientError) as theirs:
            boto.assume_role(RoleArn=arn, RoleSessionName="fn")
    finally:
        httpx.put(f"{endpoint.url}/_harness/iam", json={"enforce": previous["previous"]})
    assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"]
    assert ours.value.response["Error"]["Message"] == theirs.value.response["Error"]["Message"]
