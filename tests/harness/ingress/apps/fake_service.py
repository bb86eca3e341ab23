"""A tiny stand-in for the query service, run by uvicorn in a subprocess (``--factory``)."""

from __future__ import annotations

import asyncio
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    """Build the fake service; FAKE_HEALTH_STATUS makes /health fail, FAKE_CRASH fails startup."""
    if os.environ.get("FAKE_CRASH"):
        print(f"fake service: cannot start: {os.environ['FAKE_CRASH']}", file=sys.stderr)
        raise SystemExit(1)
    health = {"status": int(os.environ.get("FAKE_HEALTH_STATUS", "200"))}
    if health["status"] != 200:
        print(f"fake service: health check will answer {health['status']}", file=sys.stderr)

    async def get_health(request: Request) -> JSONResponse:
        code = health["status"]
        return JSONResponse({"status": "ok" if code == 200 else "bad"}, code)

    async def set_health(request: Request) -> JSONResponse:
        health["status"] = int(request.path_params["code"])
        return JSONResponse(health)

    async def env(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        return JSONResponse({"name": name, "value": os.environ.get(name)})

    async def query(request: Request) -> JSONResponse:
        body = await request.json()
        if isinstance(body, dict) and body.get("sleep_ms"):
            await asyncio.sleep(int(body["sleep_ms"]) / 1000)
        return JSONResponse({"kind": request.path_params["kind"], "body": body, "pid": os.getpid()})

    return Starlette(
        routes=[
            Route("/health", get_health),
            Route("/admin/health/{code:int}", set_health, methods=["POST"]),
            Route("/env/{name}", env),
            Route("/query/{kind}", query, methods=["POST"]),
        ]
    )
