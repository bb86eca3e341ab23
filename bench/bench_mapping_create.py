"""CreateEventSourceMapping on the embedded endpoint: how long until it answers, and until Enabled.

Run: .venv/bin/python bench/bench_mapping_create.py [--runs 3] [--idle 2]

Each run starts an endpoint as the stack does (``--prewarm``), waits ``--idle`` seconds (the
stack provisions meanwhile), creates a table with a stream and a function, then the mapping
(TRIM_HORIZON), and prints how long CreateEventSourceMapping took to answer (AWS: at once, State
Creating) and how long until GetEventSourceMapping said Enabled (its function's first environment
and its poller started). Medians over the runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
import zipfile
from typing import Any

import boto3

from harness.aws.endpoint import Endpoint

REGION = "ap-southeast-1"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                   "Principal": {"Service": "lambda.amazonaws.com"}}],
}


def run_once(idle_s: float, name: str) -> tuple[float, float]:
    """(seconds until CreateEventSourceMapping answered, seconds until Enabled); ``name``: of
    this run's table, role and function (moto's state outlives an endpoint in a process)."""
    endpoint = Endpoint(port=0, prewarm=True, region=REGION).start()
    try:
        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint.url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test")

        dynamodb, lam, iam = client("dynamodb"), client("lambda"), client("iam")
        dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        stream = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
        role = iam.create_role(RoleName=name,
                               AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "import boto3\ndef handler(event, context):\n    pass\n")
        time.sleep(idle_s)
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                            Handler="app.handler", Code={"ZipFile": code.getvalue()})
        started = time.perf_counter()
        mapping = lam.create_event_source_mapping(
            FunctionName=name, EventSourceArn=stream, StartingPosition="TRIM_HORIZON")
        answered = time.perf_counter() - started
        deadline = time.monotonic() + 60
        while lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] != "Enabled":
            if time.monotonic() > deadline:
                raise RuntimeError("the mapping was not Enabled within 60 s")
            time.sleep(0.005)
        return answered, time.perf_counter() - started
    finally:
        endpoint.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds before CreateFunction")
    args = parser.parse_args()
    results = []
    for index in range(args.runs):
        answered, enabled = run_once(args.idle, f"bench-{os.getpid()}-{index}")
        results.append((answered, enabled))
        print(f"run {index + 1}: answered in {answered * 1000:.0f} ms, Enabled after "
              f"{enabled * 1000:.0f} ms (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"CreateEventSourceMapping answered: median "
          f"{statistics.median(r[0] for r in results) * 1000:.0f} ms; Enabled after: median "
          f"{statistics.median(r[1] for r in results) * 1000:.0f} ms over {len(results)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
