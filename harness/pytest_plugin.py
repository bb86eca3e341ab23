"""pytest plugin: the V3 stack as fixtures (``stack``, ``api``, ``aws``, ``put_command``, ``wait_for_sync``).

The backend comes from ``--harness-backend`` or ``HARNESS_BACKEND`` (``embedded`` by default;
``localstack`` skips with the reason where no Docker engine runs). ``--harness-gateway-url`` points
the same tests at a stack that is already up, e.g. a deployed stage (with ``--harness-endpoint-url``
for its AWS side, if reachable).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness.stack import commands
from harness.stack.backends import BACKENDS, BackendUnavailable


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("query-harness", "Query Service V3 stack")
    group.addoption(
        "--harness-backend",
        default=os.environ.get("HARNESS_BACKEND", "embedded"),
        choices=BACKENDS,
        help="AWS backend of the stack fixture (env HARNESS_BACKEND).",
    )
    group.addoption(
        "--harness-gateway-url",
        default=os.environ.get("HARNESS_GATEWAY_URL"),
        help="Use a running stack's gateway (with its stage, e.g. .../v1) instead of starting one.",
    )
    group.addoption(
        "--harness-endpoint-url",
        default=os.environ.get("HARNESS_ENDPOINT_URL"),
        help="AWS endpoint of the running stack given by --harness-gateway-url.",
    )
    group.addoption(
        "--harness-project-dir",
        default=None,
        help="A checkout whose infra/ and contracts/ the stack is provisioned from "
        "(env HARNESS_PROJECT_DIR; default: the checkout or the installed wheel's copy).",
    )


@dataclass
class StackHandle:
    """What tests need to know of the stack under test."""

    gateway_url: str
    edge_url: str | None
    region: str = "ap-southeast-1"
    backend: str = "embedded"
    stack: Any = None  # harness.stack.stack.Stack when this session started it
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A boto3 client on the stack's AWS endpoint (cached per service)."""
        if self.edge_url is None:
            pytest.skip("this stack's AWS endpoint is not reachable (no --harness-endpoint-url)")
        if service not in self._clients:
            from harness.stack.provision import aws_client

            self._clients[service] = aws_client(service, self.edge_url, self.region)
        return self._clients[service]


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackHandle]:
    """The whole V3 stack, up and seeded, for the test session."""
    config = request.config
    gateway_url = config.getoption("--harness-gateway-url")
    if gateway_url:
        yield StackHandle(
            gateway_url.rstrip("/"), config.getoption("--harness-endpoint-url"), backend="external"
        )
        return
    from harness.stack.project import ProjectError, project_dir
    from harness.stack.stack import Stack, StackConfig

    backend = config.getoption("--harness-backend")
    try:
        root = project_dir(config.getoption("--harness-project-dir"))
    except ProjectError as exc:
        raise pytest.UsageError(str(exc)) from None
    state_dir = tmp_path_factory.mktemp("harness")
    running = Stack(
        StackConfig(backend=backend, edge_port=0, gateway_port=0, state_dir=state_dir, root=root)
    )
    try:
        running.start()
    except BackendUnavailable as exc:
        pytest.skip(f"{backend} backend unavailable: {exc}")
    try:
        state = running.state()
        yield StackHandle(
            state["gateway_url"], state["edge_url"], state["region"], backend, running
        )
    finally:
        running.stop()


@pytest.fixture(scope="session")
def api(stack: StackHandle) -> Iterator[httpx.Client]:
    """An HTTP client on the gateway's stage URL: ``api.post("/query/user", json=...)``."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client


class AwsClients:
    """``aws.dynamodb``, ``aws("lambda")``: boto3 clients on the stack's endpoint."""

    def __init__(self, handle: StackHandle) -> None:
        self._handle = handle

    def __call__(self, service: str) -> Any:
        return self._handle.client(service)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self._handle.client(service)


@pytest.fixture(scope="session")
def aws(stack: StackHandle) -> AwsClients:
    """boto3 clients on the stack's AWS endpoint."""
    return AwsClients(stack)


_sequence = itertools.count(1)


@pytest.fixture
def command_record_factory() -> Callable[..., dict[str, Any]]:
    """Build a unique, valid command record; keyword arguments override fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        n = next(_sequence)
        now_ms = int(time.time() * 1000) + n
        record: dict[str, Any] = {
            "transaction_id": f"tx_test_{os.getpid()}_{n}",
            "created_at": now_ms,
            "user_id": f"user_test_{os.getpid()}_{n}",
            "notification_title": "test notification",
            "status": "SENT",
            "platform": "ANDROID",
            "device_token": f"token-{n}",
            "payload": '{"body": "hello"}',
            "ap_id": "mobile-app-001",
        }
        record.update(overrides)
        return record

    return make


@pytest.fixture
def put_command(aws: AwsClients) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Write a command record to ``command-records``; returns the record."""

    def put(record: dict[str, Any]) -> dict[str, Any]:
        commands.put_command(aws.dynamodb, record)
        return record

    return put


@pytest.fixture
def wait_for_sync(aws: AwsClients) -> Callable[..., dict[str, Any]]:
    """Poll the read side until a record shows up: ``wait_for_sync(record, expect={...})``.

    The record is checked against the command-record schema first (``InvalidCommandRecord`` at
    once: it can never sync; ``validate=False`` skips that), and a record the stream processor
    rejects raises ``RecordRejected`` with the reason as soon as it reaches the on-failure queue.
    """
    from harness.stack.failures import FailureWatch

    def wait(
        record: dict[str, Any],
        *,
        expect: Any = None,
        timeout_s: float = 10.0,
        validate: bool = True,
    ) -> dict[str, Any]:
        if validate:
            commands.validate_command(record)
        return commands.wait_for_sync(
            aws.dynamodb,
            record["user_id"],
            int(record["created_at"]),
            expect=expect,
            timeout_s=timeout_s,
            watch=FailureWatch(aws),
            source_key={"transaction_id": record["transaction_id"], "created_at": record["created_at"]},
        )

    return wait
