"""pytest plugin: the V3 stack as fixtures (``stack``, ``api``, ``aws``, ``put_command``, ``wait_for_sync``,
``faults``).

Per-test isolation: ``isolated_aws`` (or the marker ``@pytest.mark.aws_isolated``) gives boto3
clients on a bare embedded endpoint (not the stack's) that is reset before and after the test
(``POST /moto-api/reset``: tables, queues, roles, functions, mappings and their pollers, queued
Event invocations all gone).

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

from harness.faults.client import FaultsClient, kill_replica
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
        "--harness-time-scale",
        type=float,
        default=float(os.environ.get("HARNESS_TIME_SCALE", "20")),
        help="Divide AWS periods (health checks, grace period, deregistration delay, metric "
        "periods, cooldowns) by this factor; 1 = AWS's real timing (env HARNESS_TIME_SCALE).",
    )
    group.addoption(
        "--harness-project-dir",
        default=None,
        help="A checkout whose infra/ and contracts/ the stack is provisioned from "
        "(env HARNESS_PROJECT_DIR; default: the checkout or the installed wheel's copy).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "aws_isolated: run on a freshly reset embedded AWS endpoint (the isolated_aws fixture)",
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
    scale = config.getoption("--harness-time-scale")
    running = Stack(
        StackConfig(
            backend=backend,
            edge_port=0,
            gateway_port=0,
            state_dir=state_dir,
            time_scale=scale,
            root=root,
        )
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
            transaction_id=record.get("transaction_id"),
            watch=FailureWatch(aws),
            source_key={"transaction_id": record["transaction_id"], "created_at": record["created_at"]},
        )

    return wait


@pytest.fixture(scope="session")
def isolated_endpoint() -> Iterator[Any]:
    """A bare embedded AWS endpoint in this process (``harness.aws.endpoint.Endpoint``).

    It shares moto's state with any other endpoint in the same process; the stack's endpoint
    runs in its own process and is never reset by these fixtures.
    """
    from harness.aws.endpoint import Endpoint

    server = Endpoint(port=0).start()
    try:
        yield server
    finally:
        server.stop()


def reset_endpoint(url: str) -> None:
    """``POST <url>/moto-api/reset``; fails the test with the endpoint's answer if it fails."""
    answer = httpx.post(url.rstrip("/") + "/moto-api/reset", timeout=60.0)
    if answer.status_code != 200:
        pytest.fail(f"resetting the AWS endpoint {url} failed: {answer.status_code} {answer.text}")


@pytest.fixture
def isolated_aws(isolated_endpoint: Any) -> Iterator[AwsClients]:
    """boto3 clients (``isolated_aws.dynamodb``) on an endpoint reset before and after the test."""
    reset_endpoint(isolated_endpoint.url)
    yield AwsClients(StackHandle("", isolated_endpoint.url, isolated_endpoint.region, "embedded"))
    reset_endpoint(isolated_endpoint.url)


@pytest.fixture(autouse=True)
def _aws_isolated_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("aws_isolated") is not None:
        request.getfixturevalue("isolated_aws")


class StackFaults(FaultsClient):
    """The ``faults`` fixture: the endpoint's fault API, plus killing a service replica."""

    def __init__(self, handle: StackHandle) -> None:
        assert handle.edge_url is not None
        super().__init__(handle.edge_url)
        self._handle = handle

    def kill_replica(self, replica_id: str | None = None) -> dict[str, Any]:
        """SIGKILL a running replica of the stack this session started; returns it."""
        if self._handle.stack is None:
            pytest.skip("replicas can be killed only in a stack this session started")
        return kill_replica(self._handle.stack.state()["replicas"], replica_id)


@pytest.fixture
def faults(stack: StackHandle) -> Iterator[StackFaults]:
    """Faults on the stack (embedded backend only), cleared before and after the test."""
    if stack.backend != "embedded" or stack.edge_url is None:
        pytest.skip(f"the fault injector acts on the embedded backend, not {stack.backend}")
    with StackFaults(stack) as client:
        client.clear()
        try:
            yield client
        finally:
            client.clear()
