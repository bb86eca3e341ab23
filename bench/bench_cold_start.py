"""A new Lambda environment's cold start: forked from the fork server vs started as a new Python.

Usage: .venv/bin/python bench/bench_cold_start.py [--starts 20]
Each start registers the function again (a new version: a new environment) and invokes it once
with a payload query-lambda rejects before any DynamoDB call, so the figure is spawn + the
function's own init (powertools, pydantic, the handler module) + one invoke. The baseline is the
same runtime with ``fork=False`` (``python -B worker.py`` per environment), measured in this run.
Target: forked median <= 100 ms, with the REPORT line's Init Duration still there.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "lambdas.query.handler.lambda_handler"
EVENT = json.dumps({"query_type": "nonsense", "id": "u"}).encode()
INIT = re.compile(r"Init Duration: ([0-9.]+) ms")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


@contextmanager
def code_dir() -> Iterator[Path]:
    """The function's code as the Lambda zip has it: the `lambdas` package only."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as root:
        shutil.copytree(ROOT / "lambdas", Path(root) / "lambdas")
        yield Path(root)


def cold_starts(starts: int, *, fork: bool) -> tuple[list[float], list[float]]:
    """Wall ms of ``starts`` first invocations of a new environment, and their Init Durations."""
    walls: list[float] = []
    inits: list[float] = []
    logs: list[str] = []
    with (
        code_dir() as code,
        LambdaRuntime(
            endpoint_url="http://127.0.0.1:9",
            region="ap-southeast-1",
            log_sink=lambda name, lines: logs.extend(lines),
            fork=fork,
        ) as runtime,
    ):
        for start in range(starts + 1):
            runtime.register(
                FunctionConfig(
                    name="query-lambda",
                    arn="arn:aws:lambda:ap-southeast-1:000000000000:function:query-lambda",
                    handler=HANDLER,
                    code_dir=code,
                    environment={"NOTIFICATION_TABLE_NAME": "t", "START": str(start)},
                )
            )
            began = time.perf_counter()
            result = runtime.invoke("query-lambda", EVENT)
            wall = (time.perf_counter() - began) * 1000.0
            if result.function_error is not None or b'"ok": false' not in result.payload:
                raise RuntimeError(f"unexpected answer: {result.payload[:300]!r}")
            if start:  # the first start also waits for the fork server's own imports
                walls.append(wall)
        deadline = time.monotonic() + 10
        while sum("REPORT" in line for line in logs) < starts + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    inits = [float(m.group(1)) for line in logs if (m := INIT.search(line))][1:]
    if len(inits) != starts:
        raise RuntimeError(f"{len(inits)} Init Durations reported for {starts} cold starts")
    return walls, inits


def measure(starts: int) -> dict[str, dict[str, float]]:
    """Median/p99 cold start and Init Duration, forked and spawned (the baseline)."""
    figures: dict[str, dict[str, float]] = {}
    for label, fork in (("forked", True), ("spawned", False)):
        walls, inits = cold_starts(starts, fork=fork)
        figures[label] = {
            "median_ms": statistics.median(walls),
            "p99_ms": percentile(walls, 0.99),
            "init_median_ms": statistics.median(inits),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="cold starts per mode")
    args = parser.parse_args()
    figures = measure(args.starts)
    forked, spawned = figures["forked"], figures["spawned"]
    for label, row in figures.items():
        print(
            f"new environment + first invoke, {label:7}: median {row['median_ms']:7.1f} ms, "
            f"p99 {row['p99_ms']:7.1f} ms, Init Duration median {row['init_median_ms']:7.1f} ms"
        )
    print(f"ratio forked/spawned (median): {forked['median_ms'] / spawned['median_ms']:.3f}")


if __name__ == "__main__":
    main()
