"""The in-process baseline: moto's ``mock_aws`` and the Lambda handlers called directly.

No HTTP, no processes, no stream poller: put → stream handler (with a hand-built DynamoDB
Streams event) → query handler, in this interpreter. Whatever the stack adds on top of this is
the price of running it as AWS would. Used by ``bench/report.py``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from bench_endpoint import _create_table, _load, timed
from moto import mock_aws

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # read when lambdas are imported
ROOT = Path(__file__).resolve().parents[1]
REGION = "ap-southeast-1"
#: the three queries, on the items ``bench_endpoint._load`` writes
QUERY_EVENTS = [
    {"query_type": "user", "id": "user-7", "limit": 50},
    {"query_type": "marketing", "id": "mkt-7", "limit": 50},
    {"query_type": "fail", "id": "tx-7", "limit": 50},
]


class Context:
    """The parts of a Lambda context the handlers and powertools read."""

    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:bench"
    client_context = None
    log_group_name = log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@contextmanager
def moto_table(items: int) -> Iterator[Any]:
    """``notification-records`` in ``mock_aws`` with ``items`` items; yields a DynamoDB client."""
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        NOTIFICATION_TABLE_NAME="notification-records",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            from lambdas.dynamodb_client import reset_dynamodb_client

            reset_dynamodb_client()
            client = boto3.client("dynamodb", region_name=REGION)
            _create_table(client)
            _load(client, items)
            yield client
            reset_dynamodb_client()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def query_load(concurrency: int, seconds: float, items: int = 30) -> tuple[list[float], float]:
    """The query handler called directly by ``concurrency`` threads: latencies (ms), calls/s.

    30 items: about the stack's seed (5 records), with one hit for each of the three queries.
    """
    from lambdas.query.handler import lambda_handler

    with moto_table(items):
        latencies: list[float] = []
        lock = threading.Lock()
        until = time.perf_counter() + seconds

        def loop(worker: int) -> None:
            index = worker
            while time.perf_counter() < until:
                began = time.perf_counter()
                result = lambda_handler(QUERY_EVENTS[index % 3], Context())
                spent = (time.perf_counter() - began) * 1000.0
                if not result["ok"]:
                    raise RuntimeError(f"baseline query failed: {result}")
                with lock:
                    latencies.append(spent)
                index += 1

        began = time.perf_counter()
        threads = [threading.Thread(target=loop, args=(w,)) for w in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return latencies, len(latencies) / (time.perf_counter() - began)


def sync_latency(samples: int) -> list[float]:
    """put (hand-built stream event) → stream handler → query handler finds it: ms each."""
    from lambdas.query.handler import lambda_handler as query
    from lambdas.stream_processor.handler import lambda_handler as process

    template = json.loads((ROOT / "contracts/events/stream/insert-ap-id.event.json").read_text())
    # the handlers' EMF and log lines go where a Lambda's stdout goes: not the bench's terminal
    with moto_table(0), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        spent = []
        for index in range(samples):
            event = copy.deepcopy(template)
            record = event["Records"][0]["dynamodb"]
            transaction = f"tx-sync-{index}"
            for image in (record["Keys"], record["NewImage"]):
                image["transaction_id"] = {"S": transaction}
            record["NewImage"]["user_id"] = {"S": f"sync-user-{index}"}
            record["SequenceNumber"] = str(10**20 + index)
            began = time.perf_counter()
            if process(event, Context())["batchItemFailures"]:
                raise RuntimeError("baseline stream handler failed")
            found = query({"query_type": "user", "id": f"sync-user-{index}"}, Context())
            if found["count"] != 1:
                raise RuntimeError(f"baseline record not readable: {found}")
            spent.append((time.perf_counter() - began) * 1000.0)
        return spent


def noop_call(samples: int) -> list[float]:
    """A no-op handler called directly (the in-process counterpart of a warm Invoke)."""

    def handler(event: Any, context: Any) -> None:
        return None

    return timed(lambda: handler({}, Context()), samples)


def query_at_size(client: Any, samples: int) -> dict[str, list[float]]:
    """Base-table and GSI Query latencies (ms) on an in-process moto table."""
    base = {
        "TableName": "notification-records",
        "KeyConditionExpression": "user_id = :u",
        "ExpressionAttributeValues": {":u": {"S": "user-7"}},
        "ScanIndexForward": False,
        "Limit": 50,
    }
    gsi = {
        **base,
        "IndexName": "marketing_id-index",
        "KeyConditionExpression": "marketing_id = :m",
        "ExpressionAttributeValues": {":m": {"S": "mkt-7"}},
    }
    return {
        "base": timed(lambda: client.query(**base), samples),
        "gsi": timed(lambda: client.query(**gsi), samples),
    }
