"""ASGIServer: a uvicorn-served ASGI app in a thread, with readiness and a clean stop."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from harness.ingress.servers import ASGIServer, ServerStartError


def hello_app() -> Starlette:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


def test_asgi_server_port_zero_serves_then_stop_frees_port() -> None:
    server = ASGIServer(hello_app()).start()
    port = server.port
    assert port != 0
    assert httpx.get(server.url + "/").text == "hello"
    server.stop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises if the port were still held
    assert not server.running


def test_asgi_server_port_in_use_raises_clear_error() -> None:
    with ASGIServer(hello_app()) as first:
        with pytest.raises(ServerStartError, match="port in use"):
            ASGIServer(hello_app(), port=first.port, name="second").start()


def test_asgi_server_failing_startup_raises_and_frees_port() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no table"})

    server = ASGIServer(broken, name="broken")
    with pytest.raises(ServerStartError, match="broken server failed to start"):
        server.start()
    assert not server.running
