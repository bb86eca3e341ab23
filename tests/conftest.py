"""Shared fixtures: one embedded AWS endpoint per test session, and boto3 clients on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.aws.endpoint import Endpoint

TEST_REGION = "ap-southeast-1"


@pytest.fixture(scope="session")
def endpoint() -> Iterator[Endpoint]:
    """The embedded AWS endpoint (moto + harness Lambda) on a free loopback port."""
    from harness.aws.endpoint import Endpoint

    server = Endpoint(port=0, region=TEST_REGION).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_client_factory(endpoint: Endpoint) -> Callable[..., Any]:
    """Make a boto3 client on the endpoint: `aws_client_factory("dynamodb", region=..., **kw)`."""
    import boto3

    def factory(service: str, region: str = TEST_REGION, **kwargs: Any) -> Any:
        kwargs.setdefault("aws_access_key_id", "test")
        kwargs.setdefault("aws_secret_access_key", "test")
        return boto3.client(service, endpoint_url=endpoint.url, region_name=region, **kwargs)

    return factory


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that use moto in-process (``mock_aws``) before anything starts an endpoint.

    The session ``endpoint`` fixture runs moto in this process too; ``mock_aws`` resets moto's
    backends on exit and intercepts every botocore call while active, so the two must not overlap.
    """
    first = [item for item in items if "tests/lambdas/" in item.nodeid.replace("\\", "/")]
    if first:
        rest = [item for item in items if item not in first]
        items[:] = first + rest
