"""A new Lambda environment's cold start: forked from the fork server vs started as a new Python.

Usage: .venv/bin/python bench/bench_cold_start.py [--starts 20] [--event rejected|query]
    [--no-baseline]
Each start registers the function again (a new version: a new environment) and invokes it once.
``--event rejected`` (the default, and what bench/report.py shows) sends a payload query-lambda
rejects before any DynamoDB call: spawn + the function's own init (powertools, pydantic, the
handler module) + one invoke. ``--event query`` sends a user query answered by a stub DynamoDB
endpoint in this process (an empty page), adding its first call (botocore session, client and
credential chain, one Query): what each new environment of a cold burst pays.
Besides wall clock (load-dependent) it prints the CPU each new environment cost: the child's own
(``/proc/<pid>/schedstat`` run time, user/system ticks, minor page faults) and the fork server's
(forking, learning from reports), per environment -- figures that hold on a loaded machine.
The baseline is the same runtime with ``fork=False`` (``python -B worker.py`` per environment),
measured in this run. Target: forked median <= 100 ms, with the REPORT line's Init Duration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "lambdas.query.handler.lambda_handler"
EVENTS = {
    "query": json.dumps({"query_type": "user", "id": "u"}).encode(),
    "rejected": json.dumps({"query_type": "nonsense", "id": "u"}).encode(),
}
ANSWERS = {"query": b'"ok": true', "rejected": b'"ok": false'}
INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


@contextmanager
def code_dir() -> Iterator[Path]:
    """The function's code as the Lambda zip has it: the `lambdas` package only."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as root:
        shutil.copytree(ROOT / "lambdas", Path(root) / "lambdas")
        yield Path(root)


class _EmptyQuery(BaseHTTPRequestHandler):
    """DynamoDB's answer to any request: an empty Query page."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"Items": [], "Count": 0, "ScannedCount": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass


@contextmanager
def stub_dynamodb() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyQuery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Figures:
    """Per new environment: wall ms, Init Duration, the child's CPU and the server's share."""

    walls: list[float] = field(default_factory=list)
    inits: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # the child's run time (schedstat)
    user_ms: list[float] = field(default_factory=list)
    system_ms: list[float] = field(default_factory=list)
    minflt: list[float] = field(default_factory=list)
    server_cpu_ms: float = 0.0  # the fork server's CPU over the starts, per start


def _child_cpu(pid: int) -> tuple[float, float, float, float]:
    """A live process's run time (ms), user and system ms, minor faults, from /proc."""
    with open(f"/proc/{pid}/schedstat") as schedstat:
        run_ns = int(schedstat.read().split()[0])
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    minflt, utime, stime = int(fields[7]), int(fields[11]), int(fields[12])
    return run_ns / 1e6, utime * TICK_MS, stime * TICK_MS, float(minflt)


def _server_cpu_ms(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system) * 1000.0


def cold_starts(starts: int, *, fork: bool, event: str) -> Figures:
    """Figures of ``starts`` first invocations of a new environment."""
    figures = Figures()
    logs: list[str] = []
    with (
        code_dir() as code,
        stub_dynamodb() as endpoint,
        LambdaRuntime(
            endpoint_url=endpoint,
            region="ap-southeast-1",
            log_sink=lambda name, lines: logs.extend(lines),
            fork=fork,
        ) as runtime,
    ):
        server_pid = runtime._forks.pid if runtime._forks is not None else None  # noqa: SLF001
        seen: set[int] = set()
        server_began = 0.0
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
            result = runtime.invoke("query-lambda", EVENTS[event])
            wall = (time.perf_counter() - began) * 1000.0
            if result.function_error is not None or ANSWERS[event] not in result.payload:
                raise RuntimeError(f"unexpected answer: {result.payload[:300]!r}")
            workers = {w.process.pid for w in runtime._live} - seen  # noqa: SLF001
            if len(workers) != 1:
                raise RuntimeError(f"{len(workers)} new environments for one cold start")
            pid = workers.pop()
            seen.add(pid)
            cpu, user, system, minflt = _child_cpu(pid)
            if not start:  # the first start also waits for the fork server's own imports
                server_pid = runtime._forks.pid if runtime._forks is not None else None  # noqa: SLF001
                time.sleep(0.5)  # the server learns from the first child's report
                server_began = _server_cpu_ms(server_pid)
                continue
            figures.walls.append(wall)
            figures.cpu_ms.append(cpu)
            figures.user_ms.append(user)
            figures.system_ms.append(system)
            figures.minflt.append(minflt)
        figures.server_cpu_ms = (_server_cpu_ms(server_pid) - server_began) / starts
        deadline = time.monotonic() + 10
        while sum("REPORT" in line for line in logs) < starts + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    figures.inits = [float(m.group(1)) for line in logs if (m := INIT.search(line))][1:]
    if len(figures.inits) != starts:
        raise RuntimeError(f"{len(figures.inits)} Init Durations reported for {starts} starts")
    return figures


def measure(
    starts: int, event: str = "rejected", baseline: bool = True
) -> dict[str, dict[str, float]]:
    """Median/p99 cold start, Init Duration and CPU per environment, forked (and spawned)."""
    rows: dict[str, dict[str, float]] = {}
    modes = (("forked", True), ("spawned", False)) if baseline else (("forked", True),)
    for label, fork in modes:
        figures = cold_starts(starts, fork=fork, event=event)
        rows[label] = {
            "median_ms": statistics.median(figures.walls),
            "p99_ms": percentile(figures.walls, 0.99),
            "init_median_ms": statistics.median(figures.inits),
            "cpu_median_ms": statistics.median(figures.cpu_ms),
            "user_mean_ms": statistics.fmean(figures.user_ms),
            "system_mean_ms": statistics.fmean(figures.system_ms),
            "minflt_median": statistics.median(figures.minflt),
            "server_cpu_ms": figures.server_cpu_ms,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="cold starts per mode")
    parser.add_argument("--event", choices=sorted(EVENTS), default="rejected")
    parser.add_argument("--no-baseline", action="store_true", help="forked environments only")
    args = parser.parse_args()
    if args.starts < 1:
        parser.error("--starts must be at least 1")
    rows = measure(args.starts, args.event, baseline=not args.no_baseline)
    for label, row in rows.items():
        print(
            f"new environment + first invoke ({args.event}), {label:7}: "
            f"median {row['median_ms']:7.1f} ms, p99 {row['p99_ms']:7.1f} ms, "
            f"Init Duration median {row['init_median_ms']:7.1f} ms"
        )
        print(
            f"  CPU per environment, {label:7}: child {row['cpu_median_ms']:6.1f} ms median "
            f"(user {row['user_mean_ms']:5.1f} + system {row['system_mean_ms']:5.1f} ms mean, "
            f"{row['minflt_median']:.0f} minor faults), fork server {row['server_cpu_ms']:5.1f} ms"
        )
    if "spawned" in rows:
        ratio = rows["forked"]["median_ms"] / rows["spawned"]["median_ms"]
        print(f"ratio forked/spawned (median): {ratio:.3f}")


if __name__ == "__main__":
    main()
