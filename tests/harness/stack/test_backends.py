"""Backend selection and the LocalStack container configuration, without Docker."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import DockerException

from harness.stack.backends import (
    LOCALSTACK_IMAGE,
    BackendUnavailable,
    ExternalBackend,
    LocalStackBackend,
    LocalStackSettings,
    make_backend,
)


class RecordingContainer:
    """Stands in for LocalStackContainer: records the chaining calls, starts nothing."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.services: tuple[str, ...] = ()
        self.volumes: list[tuple[str, str, str]] = []
        self.started = self.stopped = False

    def with_services(self, *services: str) -> RecordingContainer:
        self.services = services
        return self

    def with_env(self, key: str, value: str) -> RecordingContainer:
        self.env[key] = value
        return self

    def with_volume_mapping(self, host: str, bind: str, mode: str = "ro") -> RecordingContainer:
        self.volumes.append((host, bind, mode))
        return self

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def get_url(self) -> str:
        return "http://127.0.0.1:49153"


def test_localstack_settings_default_image_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_LOCALSTACK_IMAGE", raising=False)
    assert LocalStackSettings().image == LOCALSTACK_IMAGE == "localstack/localstack:4.4.0"


def test_localstack_settings_image_override_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HARNESS_LOCALSTACK_IMAGE", "localstack/localstack:4.5.0")
    assert LocalStackSettings().image == "localstack/localstack:4.5.0"


def test_localstack_backend_configures_container_without_docker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCALSTACK_AUTH_TOKEN", "ls-token-123")
    seen: dict[str, Any] = {}

    def factory(settings: LocalStackSettings) -> RecordingContainer:
        seen["image"] = settings.image
        seen["container"] = RecordingContainer()
        return seen["container"]

    backend = LocalStackBackend(
        LocalStackSettings(region="ap-southeast-1"), container_factory=factory
    )
    backend.start()
    container: RecordingContainer = seen["container"]
    assert container.started
    assert seen["image"].startswith("localstack/localstack:")
    assert {"dynamodb", "dynamodbstreams", "lambda", "sqs", "logs"} <= set(container.services)
    assert container.env["LOCALSTACK_AUTH_TOKEN"] == "ls-token-123"
    assert container.env["AWS_DEFAULT_REGION"] == "ap-southeast-1"
    assert float(container.env["LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"]) < 1
    assert ("/var/run/docker.sock", "/var/run/docker.sock", "rw") in container.volumes
    assert backend.endpoint_url == "http://127.0.0.1:49153"
    backend.stop()
    assert container.stopped


def test_localstack_settings_without_token_passes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALSTACK_AUTH_TOKEN", raising=False)
    assert "LOCALSTACK_AUTH_TOKEN" not in LocalStackSettings().environment()


def test_localstack_backend_without_docker_engine_says_so() -> None:
    def factory(settings: LocalStackSettings) -> RecordingContainer:
        raise DockerException("Error while fetching server API version")

    with pytest.raises(BackendUnavailable, match="no Docker engine"):
        LocalStackBackend(container_factory=factory).start()


def test_make_backend_with_url_is_external() -> None:
    backend = make_backend("localstack", endpoint_url="http://127.0.0.1:4566/")
    assert isinstance(backend, ExternalBackend)
    assert backend.endpoint_url == "http://127.0.0.1:4566"


def test_make_backend_unknown_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown backend 'kinesis'"):
        make_backend("kinesis")
