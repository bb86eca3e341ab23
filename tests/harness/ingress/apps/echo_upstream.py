"""In-process fake upstreams for the load balancer and gateway tests."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_echo_app(name: str = "echo") -> Starlette:
    """An app that answers every request with what it received; /slow/{ms}, /status/{code}."""

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "target": name,
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", errors="replace"),
            },
            headers={"X-Upstream": name},
        )

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(int(request.path_params["ms"]) / 1000)
        return JSONResponse({"target": name, "slept_ms": int(request.path_params["ms"])})

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        return JSONResponse({"target": name, "status": code}, code)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/slow/{ms:int}", slow),
            Route("/status/{code:int}", status, methods=methods),
            Route("/{path:path}", echo, methods=methods),
        ]
    )
