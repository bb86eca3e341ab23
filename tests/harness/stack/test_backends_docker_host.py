"""The LocalStack backend honours DOCKER_HOST as testcontainers does (issue 11, point 12)."""

from __future__ import annotations

import pytest

from harness.stack.backends import LocalStackSettings, docker_socket


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE", raising=False)


def test_default_socket_is_var_run() -> None:
    assert LocalStackSettings().volumes() == [
        ("/var/run/docker.sock", "/var/run/docker.sock", "rw")
    ]


def test_unix_docker_host_is_mounted_at_localstacks_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    settings = LocalStackSettings()
    assert settings.volumes() == [("/run/user/1000/docker.sock", "/var/run/docker.sock", "rw")]
    assert "DOCKER_HOST" not in settings.environment()


def test_tcp_docker_host_is_passed_not_mounted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    settings = LocalStackSettings()
    assert settings.volumes() == []
    assert settings.environment()["DOCKER_HOST"] == "tcp://10.0.0.5:2375"


def test_testcontainers_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    monkeypatch.setenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE", "/custom.sock")
    assert docker_socket() == "/custom.sock"
