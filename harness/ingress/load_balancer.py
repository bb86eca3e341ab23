"""The internal ALB: round-robin over healthy targets, active health checks, draining.

What it copies from an Application Load Balancer (AWS's ELB user guide, target groups):

- A newly registered target is ``initial`` until it passes **one** health check, then ``healthy``
  ("After your target is registered, it must pass one health check to be considered healthy").
  Its first check is sent when it is registered (:meth:`LoadBalancer.targets_changed`), not held
  back to the next interval: ``initial`` is the state in which "the load balancer is registering
  the target or performing the initial health checks".
- A target stays in service until ``unhealthy_threshold`` consecutive health checks fail
  (``interval_s`` apart); ``healthy_threshold`` consecutive passes put it back.
- **No retry on another target**: the request goes to one target and its failure is the client's:
  502 when the connection is refused or reset, 504 when the target does not answer within the
  idle timeout. A request error never takes a target out; only health checks do.
- **Fail open**: when every registered target is unhealthy, requests go to all of them.
- **Draining**: a target that leaves the target list (deregistered) gets no new requests; its
  in-flight requests finish. :meth:`LoadBalancer.in_flight` tells the deregistering party when
  nothing is left, as ELB completes deregistration early when a draining target is idle.
- No registered target at all: 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.ingress.servers import (
    HOP_BY_HOP,
    ASGIServer,
    Receive,
    Scope,
    Send,
    read_body,
    send_json,
)
from harness.ingress.upstream import (
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)

__all__ = ["LoadBalancer", "TargetSource"]

logger = logging.getLogger(__name__)

INITIAL, HEALTHY, UNHEALTHY, DRAINING = "initial", "healthy", "unhealthy", "draining"


class TargetSource(Protocol):
    """Anything that lists target URLs, e.g. :class:`harness.ingress.replicas.ReplicaSet`."""

    def target_urls(self) -> list[str]: ...


@dataclass
class _Health:
    state: str = INITIAL
    successes: int = 0
    failures: int = 0


class LoadBalancer:
    """Round-robin over healthy targets, kept by active health checks (see the module doc)."""

    def __init__(
        self,
        targets: TargetSource | Callable[[], Sequence[str]] | Sequence[str],
        *,
        health_path: str = "/health",
        interval_s: float = 1.0,
        healthy_threshold: int = 2,
        unhealthy_threshold: int = 2,
        timeout_s: float = 1.0,
        idle_timeout_s: float = 60.0,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = 100,
        observer: Callable[[int, float | None], None] | None = None,
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
        #: ALB's idle timeout (default 60 s): a target silent for this long gets the client a 504.
        self.idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        #: sees (status, target response seconds or None) of every request: AWS/ApplicationELB
        #: metrics (harness.cloudwatch); None where the load balancer itself answered
        self.observer = observer
        self._health: dict[str, _Health] = {}
        self._in_flight: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._next = 0
        self._client: UpstreamPool | None = None
        self._checker: UpstreamPool | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_checks: set[str] = set()  # targets whose first check is on its way
        self._pending_checks: set[asyncio.Future[None]] = set()
        self.server = ASGIServer(self, host=host, port=port, name="load-balancer")

    # -- server object --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the load balancer."""
        return self.server.url

    def start(self) -> LoadBalancer:
        """Serve on the configured host/port; returns after the first round of health checks."""
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
        """Each registered target URL with its state: initial, healthy or unhealthy."""
        return {url: self._health_of(url).state for url in self._provider()}

    def healthy_targets(self) -> list[str]:
        """The registered targets that pass their health checks, in registration order."""
        return [url for url in self._provider() if self._health_of(url).state == HEALTHY]

    def in_flight(self, url: str) -> int:
        """Requests sent to ``url`` that have not finished (a draining target is done at 0)."""
        with self._counts_lock:
            return self._in_flight.get(url, 0)

    def targets_changed(self) -> None:
        """A target was registered (any thread): send its first health check now (module doc)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to check
                loop.call_soon_threadsafe(self._check_new_targets)

    def _check_new_targets(self) -> None:
        new = [url for url in self._provider() if self._unchecked(url)]
        if new:
            self._first_checks.update(new)
            task = asyncio.ensure_future(self._first_check(new))
            self._pending_checks.add(task)
            task.add_done_callback(self._pending_checks.discard)

    def _unchecked(self, url: str) -> bool:
        health = self._health_of(url)
        never = health.state == INITIAL and not (health.successes or health.failures)
        return never and url not in self._first_checks

    async def _first_check(self, urls: list[str]) -> None:
        try:
            results = await asyncio.gather(*(self._check(url) for url in urls))
            registered = set(self._provider())
            for url, ok in zip(urls, results, strict=True):
                if url in registered:
                    self._record(url, ok)
        finally:
            self._first_checks.difference_update(urls)

    def check_now(self, timeout_s: float = 10.0) -> None:
        """Run one round of health checks now and wait for it (e.g. right after a registration)."""
        loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._check_round(), loop).result(timeout_s)

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
                self._client = UpstreamPool(
                    connect_timeout_s=max(self.timeout_s, 2.0),
                    idle_timeout_s=self.idle_timeout_s,
                    max_connections=self._max_connections,
                )
                # ALB health checks carry this User-Agent (the service logs passing ones at DEBUG);
                # one kept-alive connection per target, taken without scanning the others
                self._checker = UpstreamPool(
                    connect_timeout_s=self.timeout_s,
                    idle_timeout_s=self.timeout_s,
                    headers=[(b"user-agent", b"ELB-HealthChecker/2.0")],
                )
                self._loop = asyncio.get_running_loop()
                await self._check_round()  # targets listed at start are checked before serving
                self._task = asyncio.create_task(self._check_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pending in list(self._pending_checks):
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
                if self._task is not None:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
                for client in (self._client, self._checker):
                    if client is not None:
                        await client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _choose(self) -> str | None:
        """The next target, round-robin: healthy ones, or all when all are unhealthy (fail open)."""
        registered = list(self._provider())
        states = {url: self._health_of(url).state for url in registered}
        candidates = [url for url in registered if states[url] == HEALTHY]
        if not candidates:
            candidates = [url for url in registered if states[url] == UNHEALTHY]
        if not candidates:
            return None
        target = candidates[self._next % len(candidates)]
        self._next += 1
        with self._counts_lock:
            self._in_flight[target] = self._in_flight.get(target, 0) + 1
        return target

    def _done(self, target: str) -> None:
        with self._counts_lock:
            left = self._in_flight.get(target, 0) - 1
            if left > 0:
                self._in_flight[target] = left
            else:
                self._in_flight.pop(target, None)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "LoadBalancer must be served (start()) to proxy"
        body = await read_body(receive)
        target = self._choose()
        if target is None:
            self._observe(503, None)
            await send_json(send, 503, {"message": "Service Unavailable: no healthy target"})
            return
        try:
            await self._forward(target, scope, body, send)
        finally:
            self._done(target)

    async def _forward(self, target: str, scope: Scope, body: bytes, send: Send) -> None:
        assert self._client is not None
        method = scope["method"]
        target_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        suffix = target_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        began = time.perf_counter()
        try:
            response = await self._client.request(
                method, target, suffix, _forward_headers(scope), body
            )
        except UpstreamTimeout:
            self._observe(504, None)
            logger.warning(
                "%s %s: %s silent for %g s", method, scope["path"], target, self.idle_timeout_s
            )
            await send_json(send, 504, {"message": f"Gateway Timeout: {target} timed out"})
        except UpstreamError as exc:  # refused, reset, closed, not HTTP: 502
            self._observe(502, None)
            logger.warning("%s %s failed on %s: %s", method, scope["path"], target, exc)
            detail = f"{target}: {type(exc).__name__}: {exc}".rstrip(": ")
            await send_json(send, 502, {"message": "Bad Gateway: " + detail})
        else:
            self._observe(response.status, time.perf_counter() - began)
            await _send_back(response, send)

    def _observe(self, status: int, target_seconds: float | None) -> None:
        if self.observer is not None:
            self.observer(status, target_seconds)

    # -- health ---------------------------------------------------------------------------
    def _health_of(self, url: str) -> _Health:
        return self._health.setdefault(url, _Health())

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._check_round()

    async def _check_round(self) -> None:
        targets = list(self._provider())
        for gone in set(self._health) - set(targets):
            del self._health[gone]  # deregistered: draining (no new requests), then forgotten
        results = await asyncio.gather(*(self._check(url) for url in targets))
        for url, ok in zip(targets, results, strict=True):
            self._record(url, ok)

    async def _check(self, url: str) -> bool:
        assert self._checker is not None
        try:
            response = await self._checker.request("GET", url, self.health_path, [])
        except UpstreamError:
            return False
        return response.status == 200

    def _record(self, url: str, ok: bool) -> None:
        health = self._health_of(url)
        if ok:
            health.successes, health.failures = health.successes + 1, 0
            if health.state == INITIAL or (
                health.state == UNHEALTHY and health.successes >= self.healthy_threshold
            ):
                if health.state == UNHEALTHY:
                    logger.info("target %s is healthy again", url)
                health.state = HEALTHY
        else:
            health.failures, health.successes = health.failures + 1, 0
            if health.state != UNHEALTHY and health.failures >= self.unhealthy_threshold:
                health.state = UNHEALTHY
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


async def _send_back(response: UpstreamResponse, send: Send) -> None:
    headers = [
        (name, value)
        for name, value in response.headers
        if name.decode("latin-1").lower() not in HOP_BY_HOP | {"date"}  # ours is sent instead
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
