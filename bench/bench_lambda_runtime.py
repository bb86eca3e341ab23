"""Warm invoke round trip of a no-op handler through harness.lambda_runtime.runtime (no HTTP).

Usage: .venv/bin/python bench/bench_lambda_runtime.py [--calls 2000] [--threads 1]
Prints cold start, then median / p99 of warm RequestResponse invokes (target: well under 5 ms).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime

HANDLER_SOURCE = "def handler(event, context):\n    return None\n"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def _worker(runtime: LambdaRuntime, calls: int, out: list[float], tail: bool) -> None:
    for _ in range(20):  # let the pool grow to one warm worker per thread first
        runtime.invoke("noop", b"{}")
    for _ in range(calls):
        began = time.perf_counter()
        result = runtime.invoke("noop", b'{"key": "value"}', tail=tail)
        out.append((time.perf_counter() - began) * 1000.0)
        if result.function_error is not None:
            raise RuntimeError(result.payload.decode())


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="warm invokes per thread")
    parser.add_argument("--threads", type=int, default=1, help="concurrent invoking threads")
    parser.add_argument("--tail", action="store_true", help="ask for the log tail too")
    args = parser.parse_args()
    delivered: list[int] = []
    with tempfile.TemporaryDirectory() as code_dir:
        Path(code_dir, "noop.py").write_text(HANDLER_SOURCE)
        with LambdaRuntime(
            endpoint_url="http://127.0.0.1:4566",
            region="ap-southeast-1",
            log_sink=lambda name, lines: delivered.append(len(lines)),
            max_concurrency=max(args.threads, 1),
        ) as runtime:
            runtime.register(
                FunctionConfig(
                    name="noop",
                    arn="arn:aws:lambda:ap-southeast-1:000000000000:function:noop",
                    handler="noop.handler",
                    code_dir=Path(code_dir),
                    environment={},
                )
            )
            began = time.perf_counter()
            runtime.invoke("noop", b"{}")
            cold_ms = (time.perf_counter() - began) * 1000.0
            samples: list[float] = []
            threads = [
                threading.Thread(target=_worker, args=(runtime, args.calls, samples, args.tail))
                for _ in range(args.threads)
            ]
            wall = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall_s = time.perf_counter() - wall
    print(f"cold start (spawn + import + invoke): {cold_ms:.1f} ms")
    print(
        f"warm invoke, {len(samples)} calls, {args.threads} thread(s): "
        f"median {statistics.median(samples):.3f} ms, p99 {_percentile(samples, 0.99):.3f} ms, "
        f"max {max(samples):.3f} ms, {len(samples) / wall_s:.0f} invokes/s"
    )
    print(f"log batches delivered to the sink: {len(delivered)}")


if __name__ == "__main__":
    main()
