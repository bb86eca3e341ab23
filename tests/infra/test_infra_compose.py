"""compose/docker-compose.yml: a pinned LocalStack the localstack backend can use."""

from __future__ import annotations

import yaml

from tests.infra.conftest import ROOT


def localstack():
    document = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    return document["services"]["localstack"]


def test_compose_pins_localstack_4_4_0_on_port_4566():
    service = localstack()

    assert service["image"] == "localstack/localstack:4.4.0"
    assert any(str(port).endswith("4566:4566") for port in service["ports"])


def test_compose_mounts_docker_socket_and_passes_auth_token():
    service = localstack()

    assert "${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock" in service["volumes"]
    assert service["environment"]["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    assert float(service["environment"]["LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"]) < 1
