"""Benchmark of the embedded AWS endpoint (one run; prints figures against the issue's targets).

    .venv/bin/python bench/bench_endpoint.py [--items 10000] [--minutes 2] [--samples 200]
    .venv/bin/python bench/bench_endpoint.py --only soak --minutes 10   # the RSS soak alone
    .venv/bin/python bench/bench_endpoint.py --only query [--sizes 1000,10000,100000]

Runs the endpoint as its own process (`python -m harness.aws.endpoint`) so cold start and RSS are
the endpoint's own, and plain moto (`python -m moto.server`, unpatched) beside it for Query.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import psutil
from botocore.config import Config

REGION = "ap-southeast-1"
TABLE = "notification-records"
CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=CONFIG,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _wait_ready(url: str, deadline_s: float = 30.0) -> None:
    client = _client("dynamodb", url)
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            client.list_tables()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def timed(call: Callable[[], Any], samples: int, warmup: int = 3) -> list[float]:
    """Milliseconds of ``samples`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    spent = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def _timings(call: Callable[[], Any], samples: int, warmup: int = 3) -> tuple[float, float]:
    spent = sorted(timed(call, samples, warmup))
    return statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.99))]


def _rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def _create_table(client: Any) -> None:
    attrs = [
        ("user_id", "S"),
        ("created_at", "N"),
        ("marketing_id", "S"),
        ("transaction_id", "S"),
        ("status", "S"),
    ]
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attrs],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "marketing_id-index",
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "marketing_id", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
            },
            {
                "IndexName": "transaction_id-status-index",
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "transaction_id", "KeyType": "HASH"},
                    {"AttributeName": "status", "KeyType": "RANGE"},
                ],
            },
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _load(client: Any, count: int, first: int = 0) -> None:
    """Items ``first``..``count`` (500 users, 100 campaigns), 25 per BatchWriteItem."""
    for start in range(first, count, 25):
        client.batch_write_item(
            RequestItems={
                TABLE: [
                    {
                        "PutRequest": {
                            "Item": {
                                "user_id": {"S": f"user-{i % 500}"},
                                "created_at": {"N": str(1_700_000_000_000 + i)},
                                "marketing_id": {"S": f"mkt-{i % 100}"},
                                "transaction_id": {"S": f"tx-{i}"},
                                "status": {"S": ("SENT", "DELIVERED", "FAILED")[i % 3]},
                                "platform": {"S": "IOS"},
                                "notification_title": {"S": f"title {i}"},
                                "ap_id": {"S": "mobile-app-001"},
                            }
                        }
                    }
                    for i in range(start, min(start + 25, count))
                ]
            }
        )


def _queries(client: Any, samples: int) -> dict[str, tuple[float, float]]:
    def base() -> Any:
        return client.query(
            TableName=TABLE,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": "user-7"}},
            ScanIndexForward=False,
            Limit=50,
        )

    def gsi() -> Any:
        return client.query(
            TableName=TABLE,
            IndexName="marketing_id-index",
            KeyConditionExpression="marketing_id = :m",
            ExpressionAttributeValues={":m": {"S": "mkt-7"}},
            ScanIndexForward=False,
            Limit=50,
        )

    return {"base": _timings(base, samples), "gsi": _timings(gsi, samples)}


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _query_sizes(sizes: list[int], samples: int, moto_samples: int) -> None:
    """Query (base table, GSI) at growing table sizes on our endpoint and on plain moto_server,
    in one run: median and p99 of the client's wall clock, and the server process's CPU per
    Query (psutil; what the endpoint itself costs, robust on a loaded machine)."""
    servers = {}
    for name, command in (("ours", [sys.executable, "-m", "harness.aws.endpoint", "--port"]),
                          ("moto", [sys.executable, "-m", "moto.server", "-p"])):
        port = _free_port()
        servers[name] = (_start([*command, str(port)])[0], f"http://127.0.0.1:{port}")
    try:
        clients = {}
        for name, (_, url) in servers.items():
            _wait_ready(url)
            clients[name] = _client("dynamodb", url)
            _create_table(clients[name])
        loaded = 0
        print(f"{'items':>7} {'server':<5} {'query':<5} {'median ms':>9} {'p99 ms':>8} "
              f"{'server CPU ms/query':>20}")
        for size in sizes:
            for name, client in clients.items():
                _load(client, size, loaded)
                process = psutil.Process(servers[name][0].pid)
                count = samples if name == "ours" else max(3, min(moto_samples, 20_000 // size))
                for kind, spent in _query_kinds(client, count, process).items():
                    (median, p99), cpu_ms = spent
                    print(f"{size:>7} {name:<5} {kind:<5} {median:9.2f} {p99:8.2f} {cpu_ms:20.2f}",
                          flush=True)
            loaded = size
        print(f"load average {psutil.getloadavg()[0]:.1f} ({psutil.cpu_count()} CPUs, shared)")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=20)


def _query_kinds(client: Any, samples: int, process: psutil.Process
                 ) -> dict[str, tuple[tuple[float, float], float]]:
    answer = {}
    for kind, params in (("base", {"KeyConditionExpression": "user_id = :u",
                                   "ExpressionAttributeValues": {":u": {"S": "user-7"}}}),
                         ("gsi", {"IndexName": "marketing_id-index",
                                  "KeyConditionExpression": "marketing_id = :m",
                                  "ExpressionAttributeValues": {":m": {"S": "mkt-7"}}})):
        def call(params: dict[str, Any] = params) -> Any:
            return client.query(TableName=TABLE, ScanIndexForward=False, Limit=50, **params)

        call()  # warm-up (builds our partition index once)
        before = _cpu_s(process)
        timing = _timings(call, samples, warmup=2)
        cpu_ms = (_cpu_s(process) - before) * 1000 / (samples + 2)
        answer[kind] = (timing, cpu_ms)
    return answer


def _start(command: list[str]) -> tuple[subprocess.Popen[str], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    return process, started


def _noop_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _soak(url: str, process: psutil.Process, minutes: float) -> tuple[int, float, float, float]:
    """Idle GetRecords polling; RSS (MB) at the start, half-way and at the end."""
    dynamodb, streams = _client("dynamodb", url), _client("dynamodbstreams", url)
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    for _ in range(1500):  # fill the iterator store (1,000 kept) before the baseline
        iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
    before, middle, polls = _rss_mb(process), 0.0, 0
    started = time.monotonic()
    half, deadline = started + minutes * 30, started + minutes * 60
    while time.monotonic() < deadline:
        iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
        polls += 1
        if not middle and time.monotonic() >= half:
            middle = _rss_mb(process)
    return polls, before, middle, _rss_mb(process)


def _print_soak(minutes: float, polls: int, before: float, middle: float, after: float) -> None:
    print(
        f"idle GetRecords soak ({minutes:g} min, {polls} polls): RSS {before:.1f} -> "
        f"{middle:.1f} (half-way) -> {after:.1f} MB; drift {after - before:+.1f} MB, "
        f"second half {after - middle:+.1f} MB   (target +-10 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200, help="samples per figure (ours)")
    parser.add_argument("--moto-samples", type=int, default=20, help="samples on plain moto")
    parser.add_argument("--minutes", type=float, default=2.0, help="idle GetRecords soak length")
    parser.add_argument(
        "--only",
        choices=("soak", "query"),
        default=None,
        help="run one figure alone (soak: table, items and the idle GetRecords soak only; "
        "query: Query at --sizes items, ours and plain moto_server, with server CPU per Query)",
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="table sizes for --only query")
    args = parser.parse_args()
    if args.only == "query":
        _query_sizes([int(s) for s in args.sizes.split(",")], args.samples, args.moto_samples)
        return
    soak_only = args.only == "soak"

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    endpoint, started = _start([sys.executable, "-m", "harness.aws.endpoint", "--port", str(port)])
    moto_port = _free_port()
    moto_url = f"http://127.0.0.1:{moto_port}"
    moto = None
    try:
        _wait_ready(url)
        cold_start = time.perf_counter() - started
        print(f"cold start to first DynamoDB call:   {cold_start:7.2f} s      (target <= 1.5 s)")
        proc = psutil.Process(endpoint.pid)
        print(f"RSS idle:                            {_rss_mb(proc):7.1f} MB")

        dynamodb = _client("dynamodb", url)
        _create_table(dynamodb)
        loading = time.perf_counter()
        _load(dynamodb, args.items)
        print(f"load {args.items} items (BatchWriteItem): {time.perf_counter() - loading:7.2f} s")
        print(
            f"RSS with {args.items} items:            {_rss_mb(proc):7.1f} MB    (target <= 250 MB)"
        )
        if soak_only:
            _print_soak(args.minutes, *_soak(url, proc, args.minutes))
            return

        get = _timings(
            lambda: dynamodb.get_item(
                TableName=TABLE,
                Key={"user_id": {"S": "user-7"}, "created_at": {"N": str(1_700_000_000_007)}},
            ),
            args.samples,
        )

        lam, iam = _client("lambda", url), _client("iam", url)
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(
            FunctionName="noop",
            Runtime="python3.12",
            Role=role,
            Handler="noop.handler",
            Code={"ZipFile": _noop_zip()},
        )
        invoke = _timings(
            lambda: lam.invoke(FunctionName="noop", Payload=b"{}")["Payload"].read(),
            args.samples,
            warmup=5,
        )
        print(
            f"warm Invoke (no-op handler):          median {invoke[0]:6.2f} ms  "
            f"p99 {invoke[1]:6.2f}"
            " ms   (target median <= 5 ms)"
        )

        ours = _queries(dynamodb, args.samples)

        moto, _ = _start([sys.executable, "-m", "moto.server", "-p", str(moto_port)])
        _wait_ready(moto_url)
        plain = _client("dynamodb", moto_url)
        _create_table(plain)
        _load(plain, args.items)
        theirs = _queries(plain, args.moto_samples)
        plain_get = _timings(
            lambda: plain.get_item(
                TableName=TABLE,
                Key={"user_id": {"S": "user-7"}, "created_at": {"N": str(1_700_000_000_007)}},
            ),
            args.samples,
        )
        for kind, label in (("base", "base-table Query"), ("gsi", "GSI Query       ")):
            print(
                f"{label} ({args.items} items):   ours median {ours[kind][0]:6.2f} ms p99 "
                f"{ours[kind][1]:6.2f} ms | plain moto median {theirs[kind][0]:7.1f} ms p99 "
                f"{theirs[kind][1]:7.1f} ms   (target median <= 10 ms)"
            )
        print(
            f"GetItem (in-process moto vs plain moto server): ours median {get[0]:5.2f} ms "
            f"p99 {get[1]:5.2f} | plain median {plain_get[0]:5.2f} ms p99 {plain_get[1]:5.2f}"
        )

        polls, before, middle, after = _soak(url, proc, args.minutes)
        _print_soak(args.minutes, polls, before, middle, after)
        print(
            json.dumps(
                {
                    "cold_start_s": round(cold_start, 3),
                    "invoke_ms": invoke,
                    "query_ms": ours,
                    "plain_moto_query_ms": theirs,
                    "soak_drift_mb": round(after - before, 1),
                }
            )
        )
    finally:
        for process in (endpoint, moto):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
