"""Test doubles for the service: a fake query Lambda (injected, not patched) and a sync client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi import FastAPI

from service.invoker import QueryLambdaRequest, parse_query_result
from service.models import QueryResponse
from tests.events import load_event

LambdaHandler = Callable[[QueryLambdaRequest, str], Any]


@dataclass
class FakeInvoker:
    """A `QueryInvoker` whose Lambda is `handler`: it returns a result document or raises."""

    handler: LambdaHandler
    calls: list[tuple[QueryLambdaRequest, str]] = field(default_factory=list)

    def invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        """Record the call, run the handler, parse its result as the real invoker does."""
        self.calls.append((request, request_id))
        return parse_query_result(self.handler(request, request_id))


def seed_lambda(request: QueryLambdaRequest, request_id: str) -> dict[str, Any]:
    """A query Lambda answering from the canonical sample results (contracts/events/query)."""
    samples = {
        ("user", "test_user_001"): "query/user.response",
        ("marketing", "campaign_2024_new_year"): "query/marketing.response",
        ("fail", "tx_002"): "query/fail.response",
    }
    name = samples.get((request["query_type"], request["id"]))
    if name is None:
        return {"ok": True, "records": [], "count": 0, "next_token": None}
    return load_event(name)


class ServiceClient:
    """A synchronous HTTP client over the ASGI app (no server, no TestClient)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request through the app and return the complete response."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await client.request(method, path, **kwargs)

        return anyio.run(send)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST `path`."""
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET `path`."""
        return self.request("GET", path, **kwargs)
