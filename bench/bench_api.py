"""The API through the whole stack: a cold burst right after `up`, then closed-loop load.

Usage: .venv/bin/python bench/bench_api.py [--seconds 8] [--concurrency 1,4,16,64] [--burst 64]
Starts `query-harness up --detach` on free ports, fires ``--burst`` concurrent requests the moment
it is up (every Lambda environment is cold), then for each concurrency runs closed-loop clients
with keep-alive over the three queries (after a warm-up) and prints p50/p99/requests/s/errors.
Targets (2 cores): burst of 64 right after up: 0 errors, p99 <= 1 s; concurrency 16 warm:
>= 300 requests/s, p99 <= 100 ms, 0 errors.

The load clients speak HTTP/1.1 with keep-alive through ``harness.ingress.upstream`` (asyncio +
httptools), not httpx: on two cores the load generator shares the CPU with the stack, and
httpx's pool cost ~6.5 ms CPU per request at concurrency 64 (its pool checks every idle
connection per request), more than any hop of the stack. Its CPU is reported as its own row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from bench_stack import cli, stack_rss_mb

from harness.ingress.upstream import UpstreamError, UpstreamPool

QUERIES = [
    ("/query/user", json.dumps({"user_id": "test_user_001"}).encode()),
    ("/query/marketing", json.dumps({"marketing_id": "campaign_2024_new_year"}).encode()),
    ("/query/fail", json.dumps({"transaction_id": "tx_002"}).encode()),
]
JSON_HEADERS = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
CLIENT_TIMEOUT_S = 30.0


def _client(connections: int) -> UpstreamPool:
    return UpstreamPool(
        connect_timeout_s=CLIENT_TIMEOUT_S,
        idle_timeout_s=CLIENT_TIMEOUT_S,
        max_connections=connections,
    )


@dataclass
class Load:
    """What a run of requests gave: latencies (ms), errors, wall time."""

    latencies_ms: list[float]
    errors: int
    seconds: float
    statuses: dict[int, int]

    def p(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, float]:
        return {
            "p50_ms": self.p(0.5),
            "p99_ms": self.p(0.99),
            "max_ms": max(self.latencies_ms, default=0.0),
            "requests_per_s": self.rate,
            "errors": float(self.errors),
            "requests": float(len(self.latencies_ms)),
        }


@contextmanager
def stack(state_dir: str, *extra: str) -> Iterator[tuple[dict[str, Any], float]]:
    """A detached stack on free ports; yields its state and how long `up` took."""
    started = time.perf_counter()
    up = cli(
        "up", "--detach", "--edge-port", "0", "--gateway-port", "0", *extra, state_dir=state_dir
    )
    took = time.perf_counter() - started
    if up.returncode != 0:
        raise RuntimeError(f"up failed: {up.stdout[-1500:]} {up.stderr[-1500:]}")
    state = json.loads((Path(state_dir) / "state.json").read_text())
    try:
        yield state, took
    finally:
        cli("down", state_dir=state_dir)


def _role(process: psutil.Process, stack_pid: int) -> str:
    """Which hop of the request path a stack process is."""
    if process.pid == stack_pid:
        return "gateway+load balancer"
    command = " ".join(process.cmdline())
    if "harness.aws.endpoint" in command:
        return "endpoint (Invoke, moto)"
    if "forkserver" in command or "worker.py" in command:
        return "Lambda environments"
    if "zygote" in command:
        return "service replicas"
    return "other"


def cpu_by_role(stack_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each hop (and by this client), summed over its processes."""
    root = psutil.Process(stack_pid)
    totals: dict[str, float] = {"client (this benchmark)": sum(psutil.Process().cpu_times()[:2])}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            role = _role(process, stack_pid)
        except psutil.Error:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def lambda_environments(stack_pid: int) -> set[int]:
    """Pids of the Lambda environments running now (children of the fork server)."""
    pids = set()
    for process in psutil.Process(stack_pid).children(recursive=True):
        try:
            parent = process.parent()
            if parent is not None and "forkserver" in " ".join(parent.cmdline()):
                pids.add(process.pid)
        except psutil.Error:
            continue
    return pids


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """CPU ms per request of each hop between two :func:`cpu_by_role` snapshots."""
    return {
        role: (after[role] - before.get(role, 0.0)) * 1000.0 / max(requests, 1) for role in after
    }


async def _one(client: UpstreamPool, url: str, index: int, load: Load) -> None:
    path, body = QUERIES[index % len(QUERIES)]
    began = time.perf_counter()
    try:
        response = await client.request("POST", url, path, JSON_HEADERS, body)
        status = response.status
    except UpstreamError:
        status = 0
    load.latencies_ms.append((time.perf_counter() - began) * 1000.0)
    load.statuses[status] = load.statuses.get(status, 0) + 1
    if status != 200:
        load.errors += 1


async def burst(url: str, count: int) -> Load:
    """``count`` requests at once, each on its own connection."""
    load = Load([], 0, 0.0, {})
    client = _client(count)
    try:
        began = time.perf_counter()
        await asyncio.gather(*(_one(client, url, i, load) for i in range(count)))
        load.seconds = time.perf_counter() - began
    finally:
        await client.aclose()
    return load


async def closed_loop(url: str, concurrency: int, seconds: float, warmup_s: float = 1.0) -> Load:
    """``concurrency`` clients, each sending its next request when the last one answered."""
    load = Load([], 0, 0.0, {})
    client = _client(concurrency)
    try:

        async def client_loop(worker: int, until: float, sink: Load) -> None:
            index = worker
            while time.perf_counter() < until:
                await _one(client, url, index, sink)
                index += 1

        if warmup_s > 0:
            warm = Load([], 0, 0.0, {})
            until = time.perf_counter() + warmup_s
            await asyncio.gather(*(client_loop(w, until, warm) for w in range(concurrency)))
        began = time.perf_counter()
        until = began + seconds
        await asyncio.gather(*(client_loop(w, until, load) for w in range(concurrency)))
        load.seconds = time.perf_counter() - began
    finally:
        await client.aclose()
    return load


def measured_burst(url: str, stack_pid: int, size: int) -> tuple[Load, dict[str, float], int]:
    """A burst of ``size`` concurrent requests: its load, CPU ms per request by role, and how
    many Lambda environments it created."""
    environments = lambda_environments(stack_pid)
    before = cpu_by_role(stack_pid)
    cold = asyncio.run(burst(url, size))
    cpu = cpu_per_request(before, cpu_by_role(stack_pid), size)
    return cold, cpu, len(lambda_environments(stack_pid) - environments)


def measured_loads(
    url: str, stack_pid: int, concurrencies: list[int], seconds: float
) -> tuple[dict[int, Load], dict[int, dict[str, float]]]:
    """Closed-loop load per concurrency (after a 1 s warm-up each, not counted), with the CPU ms
    per request by role."""
    loads: dict[int, Load] = {}
    cpu: dict[int, dict[str, float]] = {}
    for level in concurrencies:
        asyncio.run(closed_loop(url, level, 1.0, warmup_s=0.0))  # warm-up, not counted
        before = cpu_by_role(stack_pid)
        loads[level] = asyncio.run(closed_loop(url, level, seconds, warmup_s=0.0))
        cpu[level] = cpu_per_request(before, cpu_by_role(stack_pid), len(loads[level].latencies_ms))
    return loads, cpu


def measure(concurrencies: list[int], seconds: float, burst_size: int) -> dict[str, Any]:
    """Up, the cold burst, closed-loop load per concurrency and the stack's RSS."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as state_dir,
        stack(state_dir) as (
            state,
            up_s,
        ),
    ):
        url = state["gateway_url"]
        cold, burst_cpu, new_environments = measured_burst(url, state["pid"], burst_size)
        loads, cpu = measured_loads(url, state["pid"], concurrencies, seconds)
        rss_mb, processes = stack_rss_mb(state["pid"])
    return {
        "up_s": up_s,
        "burst": cold.row() | {"statuses": cold.statuses},
        "burst_cpu_ms_per_request": burst_cpu,
        "burst_new_environments": new_environments,
        "load": {c: load.row() for c, load in loads.items()},
        "cpu_ms_per_request": cpu,
        "rss_mb": rss_mb,
        "processes": processes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    parser.add_argument("--concurrency", default="1,4,16,64", help="comma-separated levels")
    parser.add_argument("--burst", type=int, default=64, help="concurrent requests right after up")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    figures = measure([int(c) for c in args.concurrency.split(",")], args.seconds, args.burst)
    b = figures["burst"]
    print(f"up --detach: {figures['up_s']:.2f} s")
    print(
        f"burst of {args.burst} right after up: errors {b['errors']:.0f} {b['statuses']}, "
        f"p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms, max {b['max_ms']:.0f} ms"
    )
    parts = ", ".join(
        f"{role} {ms:.1f}" for role, ms in sorted(figures["burst_cpu_ms_per_request"].items())
    )
    total = sum(figures["burst_cpu_ms_per_request"].values())
    print(
        f"  {figures['burst_new_environments']} new Lambda environments; "
        f"CPU ms per request of the burst: total {total:.1f} = {parts}"
    )
    for level, row in figures["load"].items():
        print(
            f"concurrency {level:3}: {row['requests_per_s']:6.0f} req/s, p50 {row['p50_ms']:6.1f} ms, "
            f"p99 {row['p99_ms']:6.1f} ms, max {row['max_ms']:6.0f} ms, errors {row['errors']:.0f}"
        )
    print(f"stack RSS after load: {figures['rss_mb']:.0f} MB in {figures['processes']} processes")
    print("CPU ms per request, by hop (user+system, all processes of the hop):")
    for level, by_role in figures["cpu_ms_per_request"].items():
        parts = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(by_role.items()))
        print(f"  concurrency {level:3}: total {sum(by_role.values()):.1f} = {parts}")


if __name__ == "__main__":
    main()
