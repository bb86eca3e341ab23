"""A lean HTTP/1.1 keep-alive client for the proxies' upstream hops (gateway -> ALB -> target).

Why not httpx here: per request, httpx's connection pool checks every idle connection with a
``select()`` (``has_expired`` -> ``is_socket_readable``) and goes through anyio's stream layers;
measured under load at concurrency 16 that was ~1 ms CPU of the ~4.3 ms the gateway and the
load balancer spent per request (``bench/bench_api.py``, py-spy). Here each connection is an
asyncio protocol fed by uvloop, parsed by ``httptools`` (the parser uvicorn serves with): a
closed keep-alive connection is known from ``connection_lost`` the moment the peer closes it,
so taking an idle connection is a list pop.

What a proxy needs and gets: the status, the raw header list (case kept), the whole body
(bodies here are JSON documents; the gateway buffers like API Gateway, the ALB forwards the
same bytes), connect/idle timeouts and errors it can map onto 502/504. A request is sent once;
the one exception is a reused keep-alive connection the peer closed before a single response
byte arrived (the idle-close race every HTTP client handles): it is sent again on a fresh
connection to the same origin, never to another one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = [
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
]


class UpstreamError(Exception):
    """The upstream request failed before a whole response arrived."""


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, connect timeout)."""


class UpstreamDisconnected(UpstreamError):
    """The peer closed or reset the connection, or sent something that is not HTTP."""

    #: whether any response byte had arrived (if not, on a reused connection: the idle race)
    received = True


class UpstreamTimeout(UpstreamError):
    """The peer sent nothing for the idle timeout."""


@dataclass
class UpstreamResponse:
    """A complete response: status, raw headers as sent, body (transfer coding removed)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class _Exchange:
    """The response being parsed on a connection."""

    future: asyncio.Future[UpstreamResponse]
    head_only: bool
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    received: bool = False
    headers_done: bool = False
    delimited: bool = False  # content-length or chunked: the parser knows where it ends


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.last_activity = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: _Exchange | None = None
        #: done once the transport is closed for good
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        exchange.received = True
        self.last_activity = asyncio.get_running_loop().time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamDisconnected(f"invalid HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        exchange = self._exchange
        if exchange is not None and exchange.headers_done and not exchange.delimited:
            self._complete()  # a body delimited by the close (no length, not chunked)
            return
        reason = f": {exc}" if exc else ""
        self._fail(UpstreamDisconnected(f"server disconnected without a complete response{reason}"))

    # -- httptools callbacks -------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._exchange is not None
        self._exchange.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._exchange.delimited = True

    def on_headers_complete(self) -> None:
        exchange = self._exchange
        assert exchange is not None
        exchange.headers_done = True
        status = self._parser.get_status_code()
        if exchange.head_only or status in (204, 304):
            exchange.delimited = True
            if exchange.head_only:  # the parser would wait for a body a HEAD response has not
                self._complete(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        if self._exchange is not None:
            self._exchange.body.append(body)

    def on_message_complete(self) -> None:
        exchange = self._exchange
        if exchange is None or exchange.future.done():
            return
        if 100 <= self._parser.get_status_code() < 200:  # 100 Continue & co.: the answer follows
            exchange.headers, exchange.body = [], []
            exchange.headers_done = exchange.delimited = False
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    # -- used by the pool ----------------------------------------------------------------
    def send(self, data: bytes, head_only: bool) -> _Exchange:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._exchange = _Exchange(loop.create_future(), head_only)
        self.reusable = False
        self.last_activity = loop.time()
        self.transport.write(data)
        return self._exchange

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _complete(self, keep_alive: bool = False) -> None:
        exchange = self._exchange
        assert exchange is not None
        self._exchange = None
        self.reusable = keep_alive and not self.closed
        if not exchange.future.done():
            status = self._parser.get_status_code()
            exchange.future.set_result(
                UpstreamResponse(status, exchange.headers, b"".join(exchange.body))
            )

    def _fail(self, error: UpstreamError) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None and not exchange.future.done():
            exchange.future.set_exception(error)


class UpstreamPool:
    """Keep-alive connections per origin; ``request`` sends one request and returns the answer.

    ``idle_timeout_s`` is how long the peer may stay silent (ALB's idle timeout: any byte
    restarts it); ``connect_timeout_s`` bounds opening a connection. ``max_connections`` caps
    the connections open at once over all origins (further requests wait for one).
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        idle_timeout_s: float | None = None,
        max_connections: int = 100,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._default_headers = list(headers or [])
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[str, list[_Connection]] = {}
        self._origins: dict[str, tuple[str, int, bytes, str]] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        origin: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
    ) -> UpstreamResponse:
        """``method`` ``origin`` + ``target`` (path and query) with ``headers`` and ``body``.

        ``origin`` is ``http://host:port``, optionally with a path prefix put before ``target``.
        """
        host, port, host_header, prefix = self._origin(origin)
        head = [f"{method} {prefix}{target} HTTP/1.1".encode("latin-1"), b"host: " + host_header]
        head += [name + b": " + value for name, value in (*self._default_headers, *headers)]
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            head.append(b"content-length: " + str(len(body)).encode())
        data = b"\r\n".join(head) + b"\r\n\r\n" + body
        async with self._slots:
            connection, reused = await self._take(origin, host, port)
            try:
                return await self._exchange(origin, connection, data, method == "HEAD")
            except UpstreamDisconnected as exc:
                if not reused or exc.received:
                    raise
            connection, _ = await self._take(origin, host, port, fresh=True)
            return await self._exchange(origin, connection, data, method == "HEAD")

    async def aclose(self) -> None:
        """Close every idle connection; in-flight ones close when their request ends."""
        self._closed = True
        idle = [connection for connections in self._idle.values() for connection in connections]
        self._idle.clear()
        for connection in idle:
            connection.close()
        lost = [connection.lost for connection in idle]
        if lost:  # closed for good before the event loop ends (no unclosed transports)
            await asyncio.wait(lost, timeout=2.0)

    def _origin(self, origin: str) -> tuple[str, int, bytes, str]:
        known = self._origins.get(origin)
        if known is None:
            parts = urlsplit(origin)
            if parts.scheme != "http" or not parts.hostname:
                raise UpstreamConnectError(f"not an http:// origin: {origin!r}")
            port = parts.port or 80
            prefix = parts.path.rstrip("/")
            known = (parts.hostname, port, parts.netloc.encode("latin-1"), prefix)
            self._origins[origin] = known
        return known

    async def _take(
        self, origin: str, host: str, port: int, *, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle and not fresh:
            connection = idle.pop()
            if not connection.closed:
                return connection, True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                transport, protocol = await loop.create_connection(_Connection, host, port)
        except TimeoutError as exc:
            raise UpstreamConnectError(f"connect to {origin} timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"connect to {origin}: {exc.strerror or exc}") from exc
        protocol.transport = transport  # uvloop calls connection_made a loop turn later
        return protocol, False

    async def _exchange(
        self, origin: str, connection: _Connection, data: bytes, head_only: bool
    ) -> UpstreamResponse:
        exchange = connection.send(data, head_only)
        try:
            response = await self._wait(connection, exchange)
        except UpstreamDisconnected as exc:
            exc.received = exchange.received
            connection.close()
            raise
        except BaseException:  # timeout, cancellation: the connection is in an unknown state
            exchange.future.cancel()
            connection.close()
            raise
        if connection.reusable and not self._closed:
            idle = self._idle.setdefault(origin, [])
            if idle and idle[0].closed:  # the peer closed the oldest ones meanwhile: forget them
                idle[:] = [kept for kept in idle if not kept.closed]
            idle.append(connection)
        else:
            connection.close()
        return response

    async def _wait(self, connection: _Connection, exchange: _Exchange) -> UpstreamResponse:
        if self.idle_timeout_s is None:
            return await exchange.future
        loop = asyncio.get_running_loop()
        while True:
            remaining = connection.last_activity + self.idle_timeout_s - loop.time()
            if remaining <= 0:
                raise UpstreamTimeout(f"no response byte for {self.idle_timeout_s:g} s")
            done, _ = await asyncio.wait({exchange.future}, timeout=remaining)
            if done:
                return exchange.future.result()
