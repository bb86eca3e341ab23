"""Task-role credentials through botocore's container-credentials provider, and a replica of the
real service calling AWS with the task role's session key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import ContainerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.iam import ContainerCredentialsServer, RoleCredentials, lambda_environment
from harness.ingress.replicas import ReplicaSet
from harness.ingress.servers import ASGIServer
from harness.stack.telemetry import NO_STATIC_CREDENTIALS

ROOT = Path(__file__).resolve().parents[3]
ROLE = "arn:aws:iam::000000000000:role/query-service-task-role"


@pytest.fixture
def credentials(aws_client_factory: Callable[..., Any]) -> Iterator[ContainerCredentialsServer]:
    role = RoleCredentials(aws_client_factory("sts"), ROLE, "ecs-task")
    server = ContainerCredentialsServer(role).start()
    yield server
    server.stop()


def test_botocore_container_provider_gets_the_assumed_role_session(
    credentials: ContainerCredentialsServer, aws_client_factory: Callable[..., Any]
) -> None:
    provider = ContainerProvider(environ=credentials.environment())
    found = provider.load()
    assert found is not None and found.method == "container-role"
    frozen = found.get_frozen_credentials()
    session = credentials.role.get()
    assert frozen.access_key == session["AccessKeyId"] and frozen.access_key.startswith("ASIA")
    assert frozen.token == session["SessionToken"]
    sts = aws_client_factory(
        "sts",
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )
    identity = sts.get_caller_identity()
    assert identity["Arn"].endswith(":assumed-role/query-service-task-role/ecs-task")


def test_container_credentials_refuse_a_wrong_token_or_path(
    credentials: ContainerCredentialsServer,
) -> None:
    assert httpx.get(credentials.url, headers={"Authorization": "wrong"}).status_code == 401
    assert httpx.get(credentials.url).status_code == 401
    bad_path = credentials.url.rsplit("/", 1)[0] + "/other"
    answer = httpx.get(bad_path, headers={"Authorization": credentials.token})
    assert answer.status_code == 404 and answer.json()["code"] == "NotFound"


def test_container_credentials_report_a_failing_assume_role() -> None:
    class Failing:
        def assume_role(self, **kwargs: Any) -> Any:
            raise RuntimeError("endpoint down")

    server = ContainerCredentialsServer(RoleCredentials(Failing(), ROLE, "t"), wait_s=0.2).start()
    try:
        answer = httpx.get(server.url, headers={"Authorization": server.token})
    finally:
        server.stop()
    assert answer.status_code == 500 and "endpoint down" in answer.json()["message"]


def test_lambda_environment_holds_the_session() -> None:
    env = lambda_environment({"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "t"})
    assert env == {
        "AWS_ACCESS_KEY_ID": "ASIA1",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_SESSION_TOKEN": "t",
    }


@pytest.fixture
def recording_lambda() -> Iterator[tuple[ASGIServer, list[dict[str, str]]]]:
    """A stand-in Lambda endpoint that records the headers of every call."""
    seen: list[dict[str, str]] = []

    async def invoke(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse({"ok": True, "records": [], "count": 0, "next_token": None})

    app = Starlette(routes=[Route("/{path:path}", invoke, methods=["POST"])])
    server = ASGIServer(app, name="recording-lambda").start()
    yield server, seen
    server.stop()


def test_replica_calls_aws_with_the_task_role_key(
    credentials: ContainerCredentialsServer,
    recording_lambda: tuple[ASGIServer, list[dict[str, str]]],
) -> None:
    recorder, seen = recording_lambda
    env = {
        "AWS_ENDPOINT_URL": recorder.url,
        "AWS_REGION": "ap-southeast-1",
        "QUERY_LAMBDA_NAME": "query-lambda",
        "PYTHONPATH": str(ROOT),
        **NO_STATIC_CREDENTIALS,
        **credentials.environment(),
    }
    with ReplicaSet("service.app:create_app", count=1, env=env, app_dir=ROOT) as replicas:
        (replica,) = replicas.replicas
        answer = httpx.post(replica.url + "/query/user", json={"user_id": "u1"}, timeout=30)
    assert answer.status_code == 200, answer.text
    session = credentials.role.get()
    (call,) = seen
    assert f"Credential={session['AccessKeyId']}/" in call["authorization"]
    assert call["x-amz-security-token"] == session["SessionToken"]
    assert credentials.requests >= 1
