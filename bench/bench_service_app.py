"""CPU per request of the service's ASGI app alone: FastAPI, middleware, the Invoke thread hop.

Usage: .venv/bin/python bench/bench_service_app.py [--requests 2000] [--rounds 3]
Builds ``service.app.create_app`` with an in-process invoker answering the canonical user
query result (no HTTP, no Lambda), and calls the app as uvicorn would (an ASGI scope, the body
in one message) on uvloop, one request after another; prints the CPU ms per request of each
round. The replicas' share of a request in ``bench/bench_api.py`` is this plus uvicorn's
HTTP parsing and the botocore Invoke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.app import create_app  # noqa: E402
from service.invoker import QueryLambdaRequest, parse_query_result  # noqa: E402
from service.models import QueryResponse  # noqa: E402
from service.settings import Settings  # noqa: E402

RESULT = json.loads(
    (Path(__file__).resolve().parent.parent / "contracts/events/query/user.response.json")
    .read_text(encoding="utf-8")
)
BODY = json.dumps({"user_id": "test_user_001"}).encode()
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/query/user",
    "raw_path": b"/query/user",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"service"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"x-request-id", b"bench"),
    ],
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 40000),
}


class _Invoker:
    def invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        return parse_query_result(RESULT)


async def _one(app: Any) -> int:
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(SCOPE), receive, send)
    return status


async def _rounds(requests: int, rounds: int) -> None:
    app = create_app(Settings(), invoker=_Invoker())
    for _ in range(200):
        assert await _one(app) == 200
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(requests):
            await _one(app)
        cpu_ms = (time.process_time() - began) * 1000.0 / requests
        print(f"service app: {cpu_ms:.3f} ms CPU per request")


def main() -> None:
    """Run the benchmark and print one line per round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds")
    args = parser.parse_args()
    # the access log line is formatted and written as in a replica, to /dev/null
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        uvloop.run(_rounds(args.requests, args.rounds))


if __name__ == "__main__":
    main()
