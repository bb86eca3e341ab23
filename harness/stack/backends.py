"""Where the AWS services come from: the embedded endpoint, LocalStack, or a given URL."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: LocalStack images newer than this refuse to start without an auth token.
LOCALSTACK_IMAGE = "localstack/localstack:4.4.0"
LOCALSTACK_SERVICES = (
    "dynamodb",
    "dynamodbstreams",
    "lambda",
    "sqs",
    "logs",
    "iam",
    "sts",
    "apigateway",
    "ecs",
    "elbv2",
)
DOCKER_SOCKET = "/var/run/docker.sock"
BACKENDS = ("embedded", "localstack")


def docker_available(timeout_s: float = 2.0) -> bool:
    """Whether a Docker engine answers ``/_ping`` (the ``docker`` CLI alone is not enough)."""
    host = os.environ.get("DOCKER_HOST", f"unix://{DOCKER_SOCKET}")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host[len("unix://") :]
        elif host.startswith("tcp://"):
            name, _, port = host[len("tcp://") :].partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(timeout_s)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200" in status_line
    except OSError:
        return False


def docker_socket() -> str | None:
    """The host's Docker socket to mount into LocalStack, found as testcontainers finds it:
    ``TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE``, else the path of a ``unix://`` ``DOCKER_HOST``
    (e.g. rootless Docker's ``$XDG_RUNTIME_DIR/docker.sock``), else /var/run/docker.sock. None for
    a ``tcp://`` engine: there is no socket to mount, LocalStack gets ``DOCKER_HOST`` instead."""
    override = os.environ.get("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE")
    if override:
        return override
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return None if host else DOCKER_SOCKET


def _tcp_docker_host() -> str | None:
    host = os.environ.get("DOCKER_HOST", "")
    return host if host.startswith("tcp://") else None


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this machine (e.g. no Docker engine); the message says why."""


class Backend(Protocol):
    """An AWS endpoint the stack is provisioned on."""

    name: str

    @property
    def endpoint_url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LocalStackSettings:
    """How the LocalStack container is configured (testable without Docker)."""

    image: str = field(
        default_factory=lambda: os.environ.get("HARNESS_LOCALSTACK_IMAGE", LOCALSTACK_IMAGE)
    )
    region: str = "ap-southeast-1"
    services: tuple[str, ...] = LOCALSTACK_SERVICES
    esm_poll_interval_s: float = 0.1
    auth_token: str | None = field(default_factory=lambda: os.environ.get("LOCALSTACK_AUTH_TOKEN"))
    docker_socket: str | None = field(default_factory=docker_socket)
    docker_host: str | None = field(default_factory=lambda: _tcp_docker_host())

    def environment(self) -> dict[str, str]:
        """Container environment: region, services, fast ESM polling, auth token if set."""
        env = {
            "AWS_DEFAULT_REGION": self.region,
            "SERVICES": ",".join(self.services),
            "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": f"{self.esm_poll_interval_s:g}",
            "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "60",
        }
        if self.auth_token:
            env["LOCALSTACK_AUTH_TOKEN"] = self.auth_token
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def volumes(self) -> list[tuple[str, str, str]]:
        """The host's Docker socket at LocalStack's /var/run/docker.sock, so it can start Lambda
        containers beside itself (none for a tcp:// engine)."""
        return [(self.docker_socket, DOCKER_SOCKET, "rw")] if self.docker_socket else []


def configure_localstack(container: Any, settings: LocalStackSettings) -> Any:
    """Apply ``settings`` to a testcontainers ``LocalStackContainer`` through its chaining API."""
    container.with_services(*settings.services)
    for key, value in settings.environment().items():
        container.with_env(key, value)
    for host, bind, mode in settings.volumes():
        container.with_volume_mapping(host, bind, mode)
    return container


def _default_container_factory(settings: LocalStackSettings) -> Any:
    from testcontainers.community.localstack import LocalStackContainer

    return LocalStackContainer(image=settings.image, region_name=settings.region)


class LocalStackBackend:
    """LocalStack in a container started by testcontainers (needs a Docker engine)."""

    name = "localstack"

    def __init__(
        self,
        settings: LocalStackSettings | None = None,
        container_factory: Callable[[LocalStackSettings], Any] = _default_container_factory,
    ) -> None:
        self.settings = settings or LocalStackSettings()
        self._factory = container_factory
        self._container: Any = None

    @property
    def endpoint_url(self) -> str:
        if self._container is None:
            raise RuntimeError("LocalStack is not started")
        return str(self._container.get_url())

    def start(self) -> None:
        try:
            from docker.errors import DockerException
        except ImportError as exc:  # pragma: no cover - docker is a testcontainers dependency
            raise BackendUnavailable("the 'docker' package is missing") from exc
        try:
            # testcontainers talks to the engine when the container object is constructed.
            container = self._factory(self.settings)
        except DockerException as exc:
            raise BackendUnavailable(
                f"no Docker engine is reachable ({exc}); the localstack backend needs one. "
                "Use --backend embedded, or give a running LocalStack with --endpoint-url."
            ) from exc
        configure_localstack(container, self.settings)
        container.start()
        self._container = container

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None


def identify_endpoint(url: str, timeout_s: float = 5.0) -> str:
    """What answers at ``url``: ``harness`` (this project's embedded endpoint), ``localstack``, or
    ``aws`` (anything else that answers HTTP, e.g. a real regional endpoint).

    Both LocalStack and the harness serve ``GET /_localstack/health``; the harness says
    ``"edition": "harness"`` there. Raises :class:`BackendUnavailable` when nothing answers.
    """
    import json
    import urllib.error
    import urllib.request

    health = f"{url.rstrip('/')}/_localstack/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as answer:  # noqa: S310 - http(s) URL
            body = answer.read()
    except urllib.error.HTTPError:
        return "aws"  # it answers HTTP, but not as LocalStack or the harness
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendUnavailable(
            f"nothing answers at --endpoint-url {url} ({reason}): start it first (e.g. "
            "'docker compose -f compose/docker-compose.yml up -d', or "
            "'python -m harness.endpoint --port 4566'), or leave --endpoint-url out"
        ) from None
    try:
        edition = json.loads(body).get("edition")
    except (ValueError, AttributeError):
        return "aws"
    return "harness" if edition == "harness" else "localstack"


class ExternalBackend:
    """An AWS endpoint already running (e.g. LocalStack from compose/), given by URL."""

    name = "external"

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        self.kind: str | None = None  # set by start(): see identify_endpoint

    @property
    def endpoint_url(self) -> str:
        return self._url

    def start(self) -> None:
        """Check that the endpoint answers, and find out what it is."""
        if not self._url.startswith(("http://", "https://")):
            raise BackendUnavailable(f"--endpoint-url {self._url!r} is not an http(s) URL")
        self.kind = identify_endpoint(self._url)

    def stop(self) -> None:
        return None


class EmbeddedBackend:
    """The harness's own endpoint: moto, hardened, plus our Lambda runtime and stream poller.

    By default it runs as its own process (``python -m harness.aws.endpoint``), so moto's work does
    not share an interpreter lock with the rest of the stack; ``in_process=True`` keeps it in a
    thread of the caller instead.
    """

    name = "embedded"

    def __init__(
        self,
        port: int = 4566,
        host: str = "127.0.0.1",
        region: str = "ap-southeast-1",
        *,
        in_process: bool = False,
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
        cache_dir: Path | None = None,
    ) -> None:
        self.port, self.host, self.region = port, host, region
        self.cache_dir = cache_dir
        self.in_process = in_process
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self._endpoint: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._url is None:
            raise RuntimeError("the embedded endpoint is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    #: moto files requests signed with unknown (test) keys under this account.
    account_id = "123456789012"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> str:
        """Start the endpoint without waiting for it; returns the URL it will answer on."""
        if self.in_process:
            from harness.aws.endpoint import Endpoint

            endpoint = Endpoint(
                host=self.host,
                port=self.port,
                region=self.region,
                prewarm=True,
                cache_dir=self.cache_dir,
            )
            endpoint.start()
            self._endpoint, self._url = endpoint, str(endpoint.url)
            return self._url
        from harness.ingress.replicas import free_port

        port = self.port or free_port(self.host)
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness.aws.endpoint",
                    "--host",
                    self.host,
                    "--port",
                    str(port),
                    "--region",
                    self.region,
                    "--prewarm",
                    "--stop-on-stdin-eof",  # we hold its stdin: if we die, it stops
                    *(["--cache-dir", str(self.cache_dir)] if self.cache_dir else []),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.PIPE,
            )
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        self._url = f"http://{self.host}:{port}"
        return self._url

    def wait_ready(self) -> None:
        """Block until the endpoint launched by :meth:`launch` answers; a clear error if it cannot."""
        if self._process is None:
            return
        assert self._process.stdout is not None
        ready = select.select([self._process.stdout], [], [], self.start_timeout_s)[0]
        line = self._process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            code = self._process.poll()
            self.stop()
            where = f" (see {self.log_path})" if self.log_path else ""
            problem = _last_error_line(self.log_path) or (
                f"exited with code {code}"
                if code is not None
                else f"not ready after {self.start_timeout_s:g} s"
            )
            raise BackendUnavailable(f"the embedded AWS endpoint did not start: {problem}{where}")
        self._url = line

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    pipe.close()
            self._process = None
        self._url = None


def _last_error_line(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


def make_backend(
    name: str,
    *,
    edge_port: int = 4566,
    endpoint_url: str | None = None,
    region: str = "ap-southeast-1",
    log_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Backend:
    """Build the backend named ``name``; an explicit ``endpoint_url`` means an external one."""
    if endpoint_url:
        return ExternalBackend(endpoint_url)
    if name == "embedded":
        return EmbeddedBackend(
            port=edge_port,
            region=region,
            log_path=log_dir / "endpoint.log" if log_dir else None,
            cache_dir=cache_dir,
        )
    if name == "localstack":
        return LocalStackBackend(LocalStackSettings(region=region))
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
