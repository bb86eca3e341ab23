"""An ASGI application served by uvicorn in a background thread, as a server object."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["HOP_BY_HOP", "ASGIApp", "ASGIServer", "ServerStartError", "read_body", "send_json"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)


class ServerStartError(RuntimeError):
    """The server could not bind its port or its application failed to start."""


class ASGIServer:
    """Serve an ASGI app on ``host:port`` (port 0 = a free port) from a daemon thread.

    ``start()`` returns once the socket is bound and the app's lifespan startup has run;
    ``stop()`` shuts down gracefully, joins the thread and frees the port.
    With ``loop_host`` (another, started server) it serves on that server's event loop and
    thread instead of its own, so two apps that call each other share one loop (no thread
    hand-off, no contention for the GIL between their threads).

    Example::

        with ASGIServer(app) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "asgi",
        ready_timeout_s: float = 10.0,
        graceful_shutdown_s: float = 2.0,
        log_level: str = "warning",
        uvicorn_options: Mapping[str, Any] | None = None,
        loop_host: ASGIServer | None = None,
    ) -> None:
        self.app = app  # may be set after bind(), e.g. when the app needs the port
        self._uvicorn_options = dict(uvicorn_options or {})
        self.host = host
        self.name = name
        self._requested_port = port
        self._ready_timeout_s = ready_timeout_s
        self._graceful_shutdown_s = graceful_shutdown_s
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._error: BaseException | None = None
        self._loop_host = loop_host
        self._hosted: concurrent.futures.Future[None] | None = None
        #: the event loop serving the app, while it runs
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The bound port (only after ``start()``)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the serving thread is alive (on a host's loop: while it serves there)."""
        if self._hosted is not None:
            return not self._hosted.done()
        return self._thread is not None and self._thread.is_alive()

    def bind(self) -> int:
        """Bind the listening socket now (``start()`` does it otherwise); returns the port."""
        if self._socket is None:
            self._socket = self._bind()
            self._port = int(self._socket.getsockname()[1])
        return self.port

    def start(self) -> ASGIServer:
        """Bind the socket, start serving in a thread and wait until the app is ready."""
        if self.running:
            return self
        self.bind()
        options: dict[str, Any] = {
            "lifespan": "on",
            "log_config": None,
            "log_level": self._log_level,
            "access_log": False,
            "proxy_headers": False,  # the client address is the TCP peer, never a header
            "server_header": False,
            "timeout_graceful_shutdown": int(max(1, self._graceful_shutdown_s)),
            **self._uvicorn_options,
        }
        config = uvicorn.Config(self.app, **options)
        self._server = uvicorn.Server(config)
        self._error = None
        host = self._loop_host
        if host is not None:
            if host.loop is None or not host.running:
                raise ServerStartError(f"{self.name} server: its loop host is not serving")
            self._hosted = asyncio.run_coroutine_threadsafe(self._serve(), host.loop)
        else:
            self._thread = threading.Thread(
                target=self._run, name=f"{self.name}-server", daemon=True
            )
            self._thread.start()
        deadline = time.monotonic() + self._ready_timeout_s
        while not self._server.started:
            if not self.running or time.monotonic() > deadline:
                reason = repr(self._error) if self._error else "timed out waiting for startup"
                self.stop()
                raise ServerStartError(f"{self.name} server failed to start: {reason}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down gracefully, join the thread and close the listening socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._hosted is not None:
            try:
                self._hosted.result(timeout=self._graceful_shutdown_s + 5.0)
            except concurrent.futures.TimeoutError:
                if self._server is not None:
                    self._server.force_exit = True
                self._hosted.cancel()
            except BaseException:  # noqa: BLE001 - reported by start(); stopping goes on
                pass
            self._hosted = None
        if self._thread is not None:
            self._thread.join(timeout=self._graceful_shutdown_s + 5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None
        self._socket = None

    def __enter__(self) -> ASGIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET
        try:
            if ipaddress.ip_address(self.host).version == 6:
                family = socket.AF_INET6
        except ValueError:
            pass  # a host name: IPv4
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket says TCP; with proto 0 every response waits ~40 ms for delayed ACKs
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise ServerStartError(
                f"{self.name} server cannot bind {self.host}:{self._requested_port}: {exc.strerror}"
                " (is the port in use? choose another port or 0 for any free port)"
            ) from exc
        sock.listen(2048)
        return sock

    def _run(self) -> None:
        assert self._server is not None
        try:  # what uvicorn.Server.run does, keeping the loop for servers it hosts
            with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start(), thread must not die loudly
            self._error = exc

    async def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        self.loop = asyncio.get_running_loop()
        try:
            await self._server.serve(sockets=[self._socket])
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self.loop = None


async def read_body(receive: Receive) -> bytes:
    """Read a whole ASGI request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> int:
    """Send a complete JSON response; returns the body length."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
    return len(payload)
