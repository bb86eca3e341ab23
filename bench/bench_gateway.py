"""Benchmark the request path gateway -> load balancer -> replicas, and replica start/replace/stop.

Prints medians and p99s; no assertions. By default the replicas run the tiny fake service of
tests/harness/ingress/apps (so the figures are the harness's own overhead); ``--app
service.app:create_app`` starts the real service instead (its GET /health is used).
It also prints the CPU per request of the gateway and load balancer threads (this process's
server threads, not the client's) with the gateway forwarding over HTTP and, as the stack wires
it, served on the ALB's event loop calling its app in-process; the two alternate.

    .venv/bin/python bench/bench_gateway.py [--requests 500] [--app ...]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import httpx
import psutil

from harness.ingress.gateway import Gateway
from harness.ingress.load_balancer import LoadBalancer
from harness.ingress.replicas import ReplicaSet

ROOT = Path(__file__).resolve().parents[1]
FAKE_APPS = ROOT / "tests" / "harness" / "ingress" / "apps"
API = ROOT / "infra" / "api-gateway" / "internal-api.json"


def summary(name: str, samples_ms: list[float]) -> None:
    """Print the median and p99 of ``samples_ms``."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:<44} median {statistics.median(ordered):8.2f} ms   p99 {p99:8.2f} ms"
        f"   (n={len(ordered)})"
    )


def timed_requests(client: httpx.Client, method: str, url: str, n: int) -> list[float]:
    """Latency of ``n`` sequential requests, in ms; raises on a non-2xx answer."""
    samples = []
    for i in range(n):
        began = time.perf_counter()
        response = client.request(
            method, url, json={"user_id": f"u{i}"} if method == "POST" else None
        )
        samples.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return samples


def server_cpu_s() -> float:
    """CPU seconds so far of this process's ASGI server threads (gateway, load balancer)."""
    ids = {t.native_id for t in threading.enumerate() if t.name.endswith("-server")}
    threads = psutil.Process().threads()
    return float(sum(t.user_time + t.system_time for t in threads if t.id in ids))


def hop_cpu(client: httpx.Client, gateways: dict[str, Gateway], path: str, n: int) -> None:
    """CPU ms per request of the server threads, per way of wiring the gateway (alternated)."""
    totals = dict.fromkeys(gateways, 0.0)
    for turn in range(10):
        for name in list(gateways)[:: 1 if turn % 2 else -1]:
            before = server_cpu_s()
            timed_requests(client, "POST", gateways[name].stage_url + path, n // 10)
            totals[name] += server_cpu_s() - before
    for name, seconds in totals.items():
        print(f"gateway + ALB threads, {name:<28} {seconds * 1000 / n:6.3f} ms CPU per request")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--app", default="fake_service:create_app")
    parser.add_argument("--rounds", type=int, default=3, help="replica start/stop rounds")
    args = parser.parse_args()
    fake = args.app.startswith("fake_service")
    method, path = ("POST", "/query/user") if fake else ("GET", "/health")

    def replica_set() -> ReplicaSet:
        return ReplicaSet(
            args.app,
            count=2,
            app_dir=FAKE_APPS if fake else None,
            env={"QUERY_LAMBDA_NAME": "query-lambda", "AWS_REGION": "ap-southeast-1"},
        )

    starts, stops = [], []
    for _ in range(args.rounds):
        replicas = replica_set()
        began = time.perf_counter()
        replicas.start()
        starts.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        replicas.stop()
        stops.append((time.perf_counter() - began) * 1000)
    summary("2 replicas start to healthy", starts)
    summary("2 replicas stop", stops)

    with (
        replica_set() as replicas,
        LoadBalancer(replicas) as lb,
        Gateway(API, lb.url) as gw,
        httpx.Client(timeout=30) as client,
    ):
        timed_requests(client, method, gw.stage_url + path, 20)  # warm up the pools
        summary(
            f"direct to a replica  {method} {path}",
            timed_requests(client, method, replicas.target_urls()[0] + path, args.requests),
        )
        summary(
            f"via load balancer    {method} {path}",
            timed_requests(client, method, lb.url + path, args.requests),
        )
        summary(
            f"via gateway + LB     {method} {path}",
            timed_requests(client, method, gw.stage_url + path, args.requests),
        )

        if fake:
            with Gateway(API, lb.url, upstream_app=lb, loop_host=lb.server) as same_loop:
                timed_requests(client, method, same_loop.stage_url + path, 20)
                hop_cpu(
                    client,
                    {"over HTTP": gw, "on the ALB's loop, in-process": same_loop},
                    path,
                    args.requests * 4,
                )

        victim = replicas.replicas[0]
        failures, began = 0, time.perf_counter()
        os.kill(victim.pid, signal.SIGKILL)
        replaced_ms = None
        for _ in range(args.requests):
            if (
                client.request(
                    method, gw.stage_url + path, json={} if method == "POST" else None
                ).status_code
                >= 400
            ):
                failures += 1
            if (
                replaced_ms is None
                and len(lb.healthy_targets()) == 2
                and victim.url not in lb.healthy_targets()
            ):
                replaced_ms = (time.perf_counter() - began) * 1000
        while replaced_ms is None and time.perf_counter() - began < 30:
            if len(lb.healthy_targets()) == 2 and victim.url not in lb.healthy_targets():
                replaced_ms = (time.perf_counter() - began) * 1000
            time.sleep(0.01)
        print(
            f"kill one replica during {args.requests} requests: {failures} failed; "
            f"replacement in the target list after {replaced_ms or float('nan'):.0f} ms"
        )


if __name__ == "__main__":
    main()
