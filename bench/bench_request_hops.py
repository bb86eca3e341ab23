"""CPU per call of the pieces inside a query's two heaviest hops (Lambda environment, replica).

Usage: .venv/bin/python bench/bench_request_hops.py [--calls 300] [--rounds 3]
Starts `query-harness up --detach` on free ports (for its seeded tables and its query-lambda),
then per round measures, one call after another, the CPU per call of (the no-op 10x as often):
- ``runtime``: a Lambda environment (``worker.py`` over its pipe) running a no-op handler:
  our runtime's own per-invocation work in the child (receive, decode, context, encode, send);
- ``query handler``: the same environment running ``lambdas.query.handler.lambda_handler``
  against the stack's endpoint (the child's CPU: the runtime plus the handler);
- ``botocore Query``: the handler's DynamoDB Query alone (its client and config), in this process;
- ``service Invoke``: the service's ``LambdaInvoker.invoke`` (botocore Invoke, parse, validate);
- ``signed POST Query``: the same Query as one SigV4-signed POST on a kept-alive
  ``http.client`` connection (botocore's signer, no botocore client): how much of the Query's
  cost is the SDK's per-call machinery rather than the request itself.
The bench_api row "Lambda environments" is mostly ``query handler``; "service replicas" is
``service Invoke`` plus bench_service_app.py's app and uvicorn's HTTP parsing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from bench_api import stack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.lambda_runtime.config import FunctionConfig  # noqa: E402
from harness.lambda_runtime.environment import Worker  # noqa: E402

REGION = "ap-southeast-1"
TABLE = "notification-records"
EVENTS = [
    {"query_type": "user", "id": "test_user_001"},
    {"query_type": "marketing", "id": "campaign_2024_new_year"},
    {"query_type": "fail", "id": "tx_002"},
]
QUERY = {
    "TableName": TABLE,
    "KeyConditionExpression": "#pk = :id",
    "ExpressionAttributeNames": {"#pk": "user_id"},
    "ExpressionAttributeValues": {":id": {"S": "test_user_001"}},
    "ScanIndexForward": False,
    "Limit": 50,
}


def _aws_environment(edge_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": edge_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "NOTIFICATION_TABLE_NAME": TABLE,
        "QUERY_LAMBDA_NAME": "query-lambda",
    }


class _Environment:
    """A Lambda environment (worker.py, spawned) running ``handler`` from ``code_dir``."""

    def __init__(self, handler: str, code_dir: Path, extra: dict[str, str]) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "LAMBDA_TASK_ROOT": str(code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "_HANDLER": handler,
            **extra,
        }
        arn = f"arn:aws:lambda:{REGION}:123456789012:function:bench"
        self.config = FunctionConfig("bench", arn, handler, code_dir, env)
        self.worker = Worker(self.config, sys.executable, env)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        request_id = f"bench-{self.calls}"
        header = json.dumps(
            {
                "id": request_id,
                "deadline_ms": int(time.time() * 1000) + 3000,
                "arn": self.config.arn,
                "cc": {"custom": {"request_id": request_id}},
            }
        ).encode()
        event = json.dumps(EVENTS[self.calls % len(EVENTS)]).encode()
        outcome = self.worker.invoke(request_id, header, event)
        if not outcome.ok:
            raise RuntimeError(f"invocation failed: {outcome.payload[:300]!r}")

    def cpu_s(self) -> float:
        return float(sum(psutil.Process(self.worker.process.pid).cpu_times()[:2]))


def _signed_post(edge_url: str) -> Callable[[], None]:
    """The Query as one SigV4-signed POST (botocore's signer) on a kept-alive connection."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.session.Session().get_credentials()
    assert credentials is not None
    signer = SigV4Auth(credentials.get_frozen_credentials(), "dynamodb", REGION)
    parts = urlsplit(edge_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.Query",
    }

    def post() -> None:
        body = json.dumps(QUERY).encode()
        request = AWSRequest("POST", edge_url + "/", data=body, headers=headers)
        signer.add_auth(request)
        connection.request("POST", "/", body, dict(request.headers.items()))
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200 or "Items" not in answer:
            raise RuntimeError(f"Query failed: {response.status} {answer}")

    return post


def _in_process(edge_url: str) -> dict[str, Callable[[], None]]:
    """The calls measured in this process."""
    os.environ.update(_aws_environment(edge_url))
    from lambdas.dynamodb_client import dynamodb_client
    from service.invoker import LambdaInvoker
    from service.settings import Settings

    client = dynamodb_client(validate_parameters=False)
    invoker = LambdaInvoker.from_settings(Settings())
    request: Any = {"query_type": "user", "id": "test_user_001", "limit": 50, "next_token": None}
    return {
        "botocore Query": lambda: client.query(**QUERY),
        "service Invoke": lambda: invoker.invoke(request, "bench"),
        "signed POST Query": _signed_post(edge_url),
    }


def _cpu_ms(call: Callable[[], None], cpu: Callable[[], float], calls: int) -> float:
    began = cpu()
    for _ in range(calls):
        call()
    return (cpu() - began) * 1000.0 / calls


def main() -> None:
    """Run the benchmark and print one line per round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls of each piece per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with (
        tempfile.TemporaryDirectory(prefix="bench-hops-") as state_dir,
        tempfile.TemporaryDirectory(prefix="bench-hops-code-") as code_dir,
        stack(state_dir) as (state, _),
    ):
        edge_url = state["edge_url"]
        Path(code_dir, "noop.py").write_text("def handler(event, context):\n    return None\n")
        environments = {
            "runtime": _Environment("noop.handler", Path(code_dir), {}),
            "query handler": _Environment(
                "lambdas.query.handler.lambda_handler", Path(code_dir), _aws_environment(edge_url)
            ),
        }
        local = _in_process(edge_url)
        try:
            for piece in [*environments.values(), *local.values()]:
                for _ in range(30):  # warm: clients, connections, first-call caches
                    piece()
            for round_ in range(1, args.rounds + 1):
                # a child's CPU time is counted in 10 ms ticks: the no-op runs 10 times as often
                figures = {
                    name: _cpu_ms(piece, piece.cpu_s, args.calls * (10 if name == "runtime" else 1))
                    for name, piece in environments.items()
                }
                figures |= {
                    name: _cpu_ms(piece, time.process_time, args.calls)
                    for name, piece in local.items()
                }
                parts = ", ".join(f"{name} {ms:.3f}" for name, ms in figures.items())
                load = os.getloadavg()[0]
                print(f"round {round_}: ms CPU per call: {parts} (load {load:.1f})", flush=True)
        finally:
            for environment in environments.values():
                environment.worker.dispose()


if __name__ == "__main__":
    main()
