"""Benchmark of the endpoint's reset: POST /moto-api/reset plus the first CreateTable after it.

    .venv/bin/python bench/bench_reset.py [--samples 100]

Runs the endpoint (`python -m harness.aws.endpoint`) and plain moto (`python -m moto.server`,
unpatched, without AWS managed policies) as their own processes, and prints for each the median
and p99 of reset + first CreateTable, of the reset alone, and the ratio ours / plain moto
(issue 16's target: reset + first CreateTable <= 20 ms median).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from bench_endpoint import _client, _free_port, _wait_ready  # the same clients and waits


def _create_table(client: Any) -> None:
    client.create_table(
        TableName="command-records",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "transaction_id", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "transaction_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _percentiles(spent: list[float]) -> tuple[float, float]:
    spent = sorted(spent)
    return statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.99))]


def _measure(url: str, samples: int) -> dict[str, tuple[float, float]]:
    client = _client("dynamodb", url)
    _wait_ready(url)
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(3):  # warm-up: both servers load their DynamoDB backend once
            http.post("/moto-api/reset").raise_for_status()
            _create_table(client)
        both, reset_only = [], []
        for _ in range(samples):
            started = time.perf_counter()
            http.post("/moto-api/reset").raise_for_status()
            after_reset = time.perf_counter()
            _create_table(client)
            done = time.perf_counter()
            both.append((done - started) * 1000)
            reset_only.append((after_reset - started) * 1000)
    return {"reset_and_create_table": _percentiles(both), "reset": _percentiles(reset_only)}


def _serve(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    ours_port, moto_port = _free_port(), _free_port()
    processes = [
        _serve([sys.executable, "-m", "harness.aws.endpoint", "--port", str(ours_port)]),
        _serve([sys.executable, "-m", "moto.server", "-p", str(moto_port)]),
    ]
    try:
        ours = _measure(f"http://127.0.0.1:{ours_port}", args.samples)
        plain = _measure(f"http://127.0.0.1:{moto_port}", args.samples)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    for key, label in (("reset_and_create_table", "reset + first CreateTable"),
                       ("reset", "reset alone              ")):
        (m, p), (pm, pp) = ours[key], plain[key]
        print(
            f"{label}: ours median {m:6.2f} ms p99 {p:6.2f} ms | plain moto median {pm:6.2f} ms "
            f"p99 {pp:6.2f} ms | ratio {m / pm:4.1f}x"
            + ("   (target median <= 20 ms)" if key == "reset_and_create_table" else "")
        )
    print(json.dumps({"samples": args.samples, "ours_ms": ours, "plain_moto_ms": plain}))


if __name__ == "__main__":
    main()
