"""The internal ALB: a round-robin reverse proxy over healthy targets with active health checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from harness.ingress.servers import (
    HOP_BY_HOP,
    ASGIServer,
    Receive,
    Scope,
    Send,
    read_body,
    send_json,
)

__all__ = ["LoadBalancer", "TargetSource", "default_idempotent"]

logger = logging.getLogger(__name__)

# errors where the target never answered: safe to try another target for idempotent requests
NO_RESPONSE_ERRORS = (
    httpx.ConnectError,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class TargetSource(Protocol):
    """Anything that lists target URLs, e.g. :class:`harness.ingress.replicas.ReplicaSet`."""

    def target_urls(self) -> list[str]: ...


def default_idempotent(method: str, path: str) -> bool:
    """GET/HEAD/OPTIONS, and POST under /query/ (read-only queries), may be retried."""
    return method in {"GET", "HEAD", "OPTIONS"} or (method == "POST" and path.startswith("/query/"))


@dataclass
class _Health:
    healthy: bool = True
    successes: int = 0
    failures: int = 0


class LoadBalancer:
    """Round-robin over healthy targets; a target failing health checks is taken out.

    New targets are healthy on arrival (a ReplicaSet lists a replica only once it answered its
    health check). A connection refused also takes a target out at once, and the request goes to
    the next healthy target; other errors before a response are retried only when
    ``idempotent(method, path)`` is true.
    """

    def __init__(
        self,
        targets: TargetSource | Callable[[], Sequence[str]] | Sequence[str],
        *,
        health_path: str = "/health",
        interval_s: float = 1.0,
        healthy_threshold: int = 2,
        unhealthy_threshold: int = 2,
        timeout_s: float = 1.0,
        request_timeout_s: float = 60.0,
        idempotent: Callable[[str, str], bool] = default_idempotent,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = 100,
    ) -> None:
        if hasattr(targets, "target_urls"):
            self._provider: Callable[[], Sequence[str]] = targets.target_urls
        elif callable(targets):
            self._provider = targets
        else:
            fixed = [str(url) for url in targets]
            self._provider = lambda: fixed
        self.health_path = health_path
        self.interval_s = interval_s
        self.healthy_threshold = healthy_threshold
        self.unhealthy_threshold = unhealthy_threshold
        self.timeout_s = timeout_s
        self.request_timeout_s = request_timeout_s
        self.idempotent = idempotent
        self._max_connections = max_connections
        self._health: dict[str, _Health] = {}
        self._next = 0
        self._client: httpx.AsyncClient | None = None
        self._checker: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.server = ASGIServer(self, host=host, port=port, name="load-balancer")

    # -- server object --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the load balancer."""
        return self.server.url

    def start(self) -> LoadBalancer:
        """Serve on the configured host/port and start the health checks."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving and health checking."""
        self.server.stop()

    def __enter__(self) -> LoadBalancer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def target_health(self) -> dict[str, str]:
        """Each current target URL with ``healthy`` or ``unhealthy``."""
        return {
            url: "healthy" if self._health_of(url).healthy else "unhealthy"
            for url in self._provider()
        }

    def healthy_targets(self) -> list[str]:
        """The current targets that pass their health checks, in registration order."""
        return [url for url in self._provider() if self._health_of(url).healthy]

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                limits = httpx.Limits(max_connections=self._max_connections)
                timeout = httpx.Timeout(self.request_timeout_s, connect=self.timeout_s * 2)
                self._client = httpx.AsyncClient(limits=limits, timeout=timeout)
                # ALB health checks carry this User-Agent (the service logs passing ones at DEBUG)
                self._checker = httpx.AsyncClient(
                    timeout=self.timeout_s, headers={"User-Agent": "ELB-HealthChecker/2.0"}
                )
                self._task = asyncio.create_task(self._check_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._task is not None:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
                for client in (self._client, self._checker):
                    if client is not None:
                        await client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "LoadBalancer must be served (start()) to proxy"
        body = await read_body(receive)
        method, path = scope["method"], scope["path"]
        healthy = self.healthy_targets()
        if not healthy:
            await send_json(send, 503, {"message": "Service Unavailable: no healthy target"})
            return
        first = self._next % len(healthy)
        self._next += 1
        order = healthy[first:] + healthy[:first]
        headers = _forward_headers(scope)
        target_path = scope.get("raw_path") or path.encode()
        query = scope.get("query_string", b"")
        suffix = target_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        errors: list[str] = []
        for attempt, target in enumerate(order, start=1):
            request = self._client.build_request(
                method, target + suffix, headers=headers, content=body
            )
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.ReadTimeout, httpx.WriteTimeout):
                await send_json(send, 504, {"message": f"Gateway Timeout: {target} timed out"})
                return
            except NO_RESPONSE_ERRORS as exc:
                errors.append(f"{target}: {type(exc).__name__}: {exc}".rstrip(": "))
                if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    self._eject(target)  # nothing was sent: any request may go elsewhere
                elif not isinstance(exc, httpx.PoolTimeout) and not self.idempotent(method, path):
                    break
            else:
                await _stream_back(response, send)
                return
            if attempt < len(order):
                logger.warning(
                    "%s %s failed on %s; retrying on %s", method, path, target, order[attempt]
                )
        await send_json(send, 502, {"message": "Bad Gateway: " + "; ".join(errors)})

    # -- health ---------------------------------------------------------------------------
    def _health_of(self, url: str) -> _Health:
        return self._health.setdefault(url, _Health())

    def _eject(self, target: str) -> None:
        health = self._health_of(target)
        if health.healthy:
            logger.warning("target %s refused a connection; taken out", target)
        health.healthy, health.successes = False, 0
        health.failures = max(health.failures, self.unhealthy_threshold)

    async def _check_forever(self) -> None:
        while True:
            targets = list(self._provider())
            for gone in set(self._health) - set(targets):
                del self._health[gone]
            results = await asyncio.gather(*(self._check(url) for url in targets))
            for url, ok in zip(targets, results, strict=True):
                self._record(url, ok)
            await asyncio.sleep(self.interval_s)

    async def _check(self, url: str) -> bool:
        assert self._checker is not None
        try:
            response = await self._checker.get(url + self.health_path)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _record(self, url: str, ok: bool) -> None:
        health = self._health_of(url)
        if ok:
            health.successes, health.failures = health.successes + 1, 0
            if not health.healthy and health.successes >= self.healthy_threshold:
                health.healthy = True
                logger.info("target %s is healthy again", url)
        else:
            health.failures, health.successes = health.failures + 1, 0
            if health.healthy and health.failures >= self.unhealthy_threshold:
                health.healthy = False
                logger.warning("target %s failed %d health checks; taken out", url, health.failures)


def _forward_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    client_ip = (scope.get("client") or ("unknown", 0))[0]
    headers: list[tuple[bytes, bytes]] = []
    forwarded_for = b""
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered in (b"content-length", b"x-forwarded-proto", b"x-forwarded-port") or (
            lowered.decode("latin-1") in HOP_BY_HOP
        ):
            continue
        if lowered == b"x-forwarded-for":
            forwarded_for = value + b", "
            continue
        headers.append((name, value))
    server_port = (scope.get("server") or ("", 80))[1]
    headers += [
        (b"x-forwarded-for", forwarded_for + client_ip.encode()),
        (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        (b"x-forwarded-port", str(server_port).encode()),
    ]
    return headers


async def _stream_back(response: httpx.Response, send: Send) -> None:
    headers = [
        (name, value)
        for name, value in response.headers.raw
        if name.decode("latin-1").lower() not in HOP_BY_HOP | {"date"}  # ours is sent instead
    ]
    try:
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()
