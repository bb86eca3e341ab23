"""Benchmark DynamoDB Streams -> Lambda event source mappings: sync latency, throughput, idle CPU.

One run prints figures (no assertions):
- sync latency: PutItem on a source table -> the item visible in a target table written by the
  function, over ``--records`` records written one at a time (targets: median <= 50 ms,
  p99 <= 200 ms);
- throughput: ``--bulk`` records through a mapping with BatchSize 100: all delivered, none
  twice (the function writes one target item per delivery), elapsed and records/s;
- idle CPU of this process (endpoint + pollers) over ``--idle`` seconds (target < 2% of a core).

By default it runs on the embedded endpoint (harness.aws.endpoint + the harness Lambda runtime, a
real function in a worker process); ``--fake`` uses a ThreadedMotoServer and an in-process
invoke instead.

    .venv/bin/python bench/bench_stream_sync.py [--records 500] [--bulk 10000] [--idle 10] [--fake]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import psutil
from botocore.config import Config

REGION = "ap-southeast-1"
ACCOUNT = "123456789012"

FUNCTION_CODE = textwrap.dedent('''
    import os
    import time
    import boto3

    dynamodb = boto3.client("dynamodb")

    def handler(event, context):
        request = getattr(context, "aws_request_id", "local")
        items = [{"PutRequest": {"Item": {
            "pk": r["dynamodb"]["Keys"]["pk"],
            "delivery": {"S": f"{request}-{i}"},
            "seq": {"S": r["dynamodb"]["SequenceNumber"]},
            "at": {"N": repr(time.time())},
        }}} for i, r in enumerate(event["Records"])]
        table = os.environ["TARGET_TABLE"]
        for start in range(0, len(items), 25):
            pending = {table: items[start:start + 25]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"]
''')


@dataclass
class Stack:
    """Where the benchmark runs: an endpoint URL, a way to make a function, and a stopper."""

    url: str
    kind: str
    make_function: Callable[[str, str], str]
    stop: Callable[[], None]
    mappings: Any


def client(url: str, service: str) -> Any:
    """A boto3 client on ``url``."""
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(max_pool_connections=16, retries={"max_attempts": 3}))


def endpoint_stack() -> Stack:
    """The embedded endpoint with the harness runtime: functions deployed through boto3."""
    from harness.aws.endpoint import Endpoint

    endpoint = Endpoint(port=0, region=REGION).start()
    iam, lam = client(endpoint.url, "iam"), client(endpoint.url, "lambda")
    role = iam.create_role(RoleName=f"bench-{uuid.uuid4().hex[:8]}",
                           AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("copy_fn.py", FUNCTION_CODE)

    def make_function(name: str, target: str) -> str:
        lam.create_function(FunctionName=name, Runtime="python3.11",
                            Role=role["Role"]["Arn"], Handler="copy_fn.handler",
                            Code={"ZipFile": buffer.getvalue()}, Timeout=60, MemorySize=256,
                            Environment={"Variables": {"TARGET_TABLE": target}})
        return name

    return Stack(endpoint.url, "embedded endpoint (harness.aws.endpoint + LambdaRuntime worker "
                 "processes)", make_function, endpoint.stop, endpoint.mappings)


def fake_stack() -> Stack:
    """ThreadedMotoServer + EventSourceMappings with an in-process invoke."""
    import os

    from moto.server import ThreadedMotoServer

    from harness.streams.mappings import EventSourceMappings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    namespace: dict[str, Any] = {}
    os.environ.setdefault("AWS_ENDPOINT_URL", url)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    exec(compile(FUNCTION_CODE, "copy_fn.py", "exec"), namespace)  # noqa: S102
    targets: dict[str, str] = {}

    class Result:
        def __init__(self, payload: bytes, error: str | None) -> None:
            self.status_code, self.payload, self.function_error = 200, payload, error

    class InProcess:
        def invoke(self, name: str, payload: bytes, **kwargs: Any) -> Result:
            if kwargs.get("invocation_type") == "DryRun":
                return Result(b"", None)
            os.environ["TARGET_TABLE"] = targets[name.rsplit(":function:", 1)[-1]]  # name or ARN
            context = type("Context", (), {"aws_request_id": str(uuid.uuid4())})()
            namespace["handler"](json.loads(payload), context)
            return Result(b"null", None)

    mappings = EventSourceMappings(endpoint_url=url, region=REGION, account_id=ACCOUNT,
                                   runtime=InProcess())
    mappings.start()

    def stop() -> None:
        mappings.stop()
        server.stop()

    def make_function(name: str, target: str) -> str:
        targets[name] = target
        return name

    return Stack(url, "ThreadedMotoServer + in-process fake invoke (notify_write called by the "
                 "bench)", make_function, stop, mappings)


def make_tables(dynamodb: Any, suffix: str) -> tuple[str, str, str]:
    """A stream-enabled source and a (pk, delivery) target; returns names and the stream ARN."""
    source, target = f"bench-src-{suffix}", f"bench-dst-{suffix}"
    stream = dynamodb.create_table(
        TableName=source, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    dynamodb.create_table(
        TableName=target, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "delivery", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "delivery", "AttributeType": "S"}])
    return source, target, str(stream)


def map_stream(stack: Stack, lam: Any, function: str, stream: str, batch_size: int) -> None:
    """Create the mapping and wait until it is Enabled."""
    if lam is not None:
        mapping = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=stream,
                                                  StartingPosition="TRIM_HORIZON",
                                                  BatchSize=batch_size)
        def get() -> Any:
            return lam.get_event_source_mapping(UUID=mapping["UUID"])
    else:
        mapping = stack.mappings.create_event_source_mapping(
            {"FunctionName": function, "EventSourceArn": stream,
             "StartingPosition": "TRIM_HORIZON", "BatchSize": batch_size})
        def get() -> Any:
            return stack.mappings.get_event_source_mapping(mapping["UUID"])
    while get()["State"] != "Enabled":
        time.sleep(0.01)


def summary(name: str, samples_ms: list[float]) -> None:
    """Print the median and p99 of ``samples_ms``."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:<44} median {statistics.median(ordered):8.2f} ms   p99 {p99:8.2f} ms"
          f"   max {ordered[-1]:8.2f} ms   (n={len(ordered)})")


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table``."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table}
    while True:
        page = dynamodb.scan(**params)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def bench_latency(stack: Stack, lam: Any, dynamodb: Any, records: int, fake: bool) -> None:
    """PutItem -> visible in the target, one record at a time."""
    source, target, stream = make_tables(dynamodb, uuid.uuid4().hex[:8])
    map_stream(stack, lam, stack.make_function(f"bench-lat-{uuid.uuid4().hex[:6]}", target),
               stream, 100)
    samples = []
    for i in range(records + 5):  # the first five warm the function up
        key = f"lat-{i:05d}"
        began = time.perf_counter()
        dynamodb.put_item(TableName=source, Item={"pk": {"S": key}, "v": {"N": str(i)}})
        if fake:
            stack.mappings.notify_write(source)
        while not dynamodb.query(TableName=target, KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": key}},
                                 Limit=1)["Items"]:
            time.sleep(0.001)
        if i >= 5:
            samples.append((time.perf_counter() - began) * 1000)
    summary("sync latency PutItem -> visible in target", samples)


def bench_throughput(stack: Stack, lam: Any, dynamodb: Any, count: int, fake: bool) -> None:
    """``count`` records through a BatchSize 100 mapping; every delivery leaves one target item."""
    source, target, stream = make_tables(dynamodb, uuid.uuid4().hex[:8])
    map_stream(stack, lam, stack.make_function(f"bench-bulk-{uuid.uuid4().hex[:6]}", target),
               stream, 100)
    began = time.time()
    for start in range(0, count, 25):
        pending = {source: [{"PutRequest": {"Item": {"pk": {"S": f"bulk-{i:06d}"}}}}
                            for i in range(start, min(count, start + 25))]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"]
        if fake:
            stack.mappings.notify_write(source)
    written = time.time()
    deadline = written + 300
    items: list[dict[str, Any]] = []
    while time.time() < deadline:
        count_now = dynamodb.describe_table(TableName=target)["Table"].get("ItemCount", 0)
        if count_now >= count:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # a late duplicate would show up here
    items = scan_all(dynamodb, target)
    keys = [item["pk"]["S"] for item in items]
    last = max((float(item["at"]["N"]) for item in items), default=written)
    elapsed = last - began
    print(f"throughput: {count} records written in {written - began:.2f} s (BatchWriteItem), "
          f"delivered {len(set(keys))} distinct, {len(keys) - len(set(keys))} twice, "
          f"{count - len(set(keys))} missing")
    print(f"throughput: first write -> last delivery {elapsed:.2f} s = "
          f"{count / elapsed:.0f} records/s (BatchSize 100)")


def bench_idle(seconds: float) -> None:
    """CPU of this process (endpoint, pollers, moto) while nothing is written."""
    process = psutil.Process()
    time.sleep(1.0)
    before = process.cpu_times()
    wall = time.perf_counter()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    print(f"idle CPU over {time.perf_counter() - wall:.1f} s with 2 mappings: "
          f"{100 * used / seconds:.2f}% of a core (whole process: endpoint + pollers + moto)")


def main() -> None:
    """Run the three measurements once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--bulk", type=int, default=10000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--fake", action="store_true", help="ThreadedMotoServer + fake invoke")
    args = parser.parse_args()
    stack = fake_stack() if args.fake else endpoint_stack()
    print(f"backend: {stack.kind}")
    try:
        dynamodb = client(stack.url, "dynamodb")
        lam = None if args.fake else client(stack.url, "lambda")
        bench_latency(stack, lam, dynamodb, args.records, args.fake)
        bench_throughput(stack, lam, dynamodb, args.bulk, args.fake)
        bench_idle(args.idle)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
