"""A Lambda function calls AWS with its execution role's session, as on AWS."""

from __future__ import annotations

import io
import json
import textwrap
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

HANDLER = textwrap.dedent("""
    import os
    import boto3

    def handler(event, context):
        identity = boto3.client("sts").get_caller_identity()
        return {"arn": identity["Arn"], "key": os.environ["AWS_ACCESS_KEY_ID"],
                "has_token": bool(os.environ.get("AWS_SESSION_TOKEN"))}
""")


def test_lambda_runs_with_its_execution_role_session(
    aws_client_factory: Callable[..., Any],
) -> None:
    iam, lam = aws_client_factory("iam"), aws_client_factory("lambda")
    role_name = f"exec-role-{uuid.uuid4().hex[:6]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ],
    }
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    name = f"who-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=20,
    )
    try:
        answer = lam.invoke(FunctionName=name, Payload=b"{}")
        result = json.loads(answer["Payload"].read())
    finally:
        lam.delete_function(FunctionName=name)
    assert "FunctionError" not in answer, result
    assert result["arn"].endswith(f":assumed-role/{role_name}/{name}")
    assert result["key"].startswith("ASIA") and result["has_token"]
