"""CPU cost at idle of the stack's AWS side: metrics, task-log shipping and target tracking.

An in-process embedded endpoint (so moto's work on PutMetricData, GetMetricStatistics and
PutLogEvents is counted too) and two idle "tasks" (sleeping processes). Each round measures this
process's CPU time over ``--seconds`` with nothing but the endpoint (the baseline), then with the
metric sink (AWS/ECS collector over the two tasks, ALB host counts), the awslogs shipper and the
autoscaler running at time scale K. Prints the median and p99 CPU (ms per second of wall time,
i.e. thousandths of a core) over the rounds, and the ratio to the baseline.

    .venv/bin/python bench/bench_telemetry.py [--seconds 10] [--rounds 3] [--scales 1,60]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psutil

from harness.autoscaling.controller import Autoscaler
from harness.autoscaling.target_tracking import ScalableTarget, TargetTrackingPolicy
from harness.aws.endpoint import Endpoint
from harness.cloudwatch import (
    AwsLogsConfig,
    EcsServiceMetrics,
    LoadBalancerMetrics,
    MetricSink,
    TaskLogShipper,
    TaskProcess,
    period_for,
)

REGION = "ap-southeast-1"


def cpu_ms_per_s(seconds: float) -> float:
    """This process's CPU time (all threads) per second of wall time, over ``seconds``."""
    me = psutil.Process()
    before, started = me.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = me.cpu_times(), time.monotonic() - started
    used = (after.user - before.user) + (after.system - before.system)
    return 1000.0 * used / elapsed


def summary(name: str, samples: list[float], baseline: float | None) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    ratio = f"   x{median / baseline:5.2f} baseline" if baseline else ""
    print(f"{name:<40} median {median:7.2f} ms/s   p99 {p99:7.2f} ms/s{ratio}   (n={len(ordered)})")


class Telemetry:
    """The pieces the stack runs, on ``tasks``, at time scale ``scale``."""

    def __init__(self, client: Any, endpoint: Endpoint, tasks: list[TaskProcess], scale: float):
        cluster = f"bench-{uuid.uuid4().hex[:6]}"
        ecs = client("ecs")
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family=cluster, containerDefinitions=[{"name": "app", "image": "i", "memory": 512}]
        )
        ecs.create_service(
            cluster=cluster, serviceName="svc", taskDefinition=cluster, desiredCount=2
        )
        client("logs").create_log_group(logGroupName=f"/ecs/{cluster}")
        self.sink = MetricSink(client("cloudwatch"), period_s=period_for(scale))
        self.sink.add_collector(EcsServiceMetrics(cluster, "svc", lambda: tasks))
        healthy = {"http://a": "healthy", "http://b": "healthy"}
        self.sink.add_collector(
            LoadBalancerMetrics(self.sink, "app/x/1", "targetgroup/y/2", lambda: healthy)
        )
        self.logs = TaskLogShipper(
            client("logs"), AwsLogsConfig(f"/ecs/{cluster}", "svc", "app"), lambda: tasks
        )
        target = ScalableTarget(f"service/{cluster}/svc", 2, 6)
        policy = TargetTrackingPolicy("cpu", 60.0, scale_out_cooldown_s=60, scale_in_cooldown_s=120)
        self.scaler = Autoscaler(client, endpoint.url, target, policy, time_scale=scale)
        self.scaler.register()

    def start(self) -> None:
        self.sink.start()
        self.logs.start()
        self.scaler.start()

    def stop(self) -> None:
        self.scaler.stop()
        self.logs.stop()
        self.sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scales", default="1,60", help="time scales K to measure, e.g. 1,60")
    args = parser.parse_args()
    scales = [float(k) for k in args.scales.split(",")]

    endpoint = Endpoint(port=0, region=REGION).start()
    session = boto3.session.Session()
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(
                service,
                endpoint_url=endpoint.url,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
        return clients[service]

    logs_dir = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"]) for _ in range(2)
    ]
    tasks = [
        TaskProcess(f"task-{i}", p.pid, 256, 512, logs_dir / f"task-{i}.log")
        for i, p in enumerate(sleepers)
    ]
    for task in tasks:
        assert task.log_path is not None
        task.log_path.write_text("")
    results: dict[str, list[float]] = {"endpoint only (baseline)": []}
    try:
        for _ in range(args.rounds):
            results["endpoint only (baseline)"].append(cpu_ms_per_s(args.seconds))
            for scale in scales:
                telemetry = Telemetry(client, endpoint, tasks, scale)
                telemetry.start()
                try:
                    sample = cpu_ms_per_s(args.seconds)
                finally:
                    telemetry.stop()
                results.setdefault(f"metrics+logs+autoscaler K={scale:g}", []).append(sample)
    finally:
        for process in sleepers:
            process.kill()
            process.wait()
        endpoint.stop()
    baseline = statistics.median(results["endpoint only (baseline)"])
    print(f"idle CPU over {args.seconds:g} s windows, {args.rounds} rounds (2 idle tasks):")
    for name, samples in results.items():
        summary(name, samples, None if name.startswith("endpoint only") else baseline)


if __name__ == "__main__":
    main()
