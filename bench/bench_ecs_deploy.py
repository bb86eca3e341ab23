"""Rolling deployments of the ECS service: update-service to first new task healthy and to COMPLETED.

Run: .venv/bin/python bench/bench_ecs_deploy.py [--scales 1 20] [--runs 3]
For each time scale K a stack is started in-process; under a request loop through the gateway,
each run registers a new revision (one environment variable changed) and calls UpdateService on
the endpoint with boto3, then reads the deployment's first-healthy and completed times. The first
scale is the baseline; the other scales' medians are given as ratios to it. Also printed: failed
requests per scale and the stack process's CPU at idle (controller, load balancer, gateway).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.stack.provision import aws_client  # noqa: E402
from harness.stack.stack import Stack, StackConfig  # noqa: E402
from tests.load_loop import Load  # noqa: E402

CLUSTER, SERVICE, FAMILY = "query-service-cluster", "query-service", "query-service-task"
KEYS = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities", "executionRoleArn")


def deploy_once(ecs: Any, stack: Stack, number: int, timeout_s: float) -> tuple[float, float]:
    """One deployment; (seconds to the first new task healthy, seconds to COMPLETED)."""
    assert stack.ecs is not None
    controller = stack.ecs.controller
    current = controller.primary.revision.arn
    definition = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    container = dict(definition["containerDefinitions"][0])
    container["environment"] = [
        *[e for e in container["environment"] if e["name"] != "BENCH_RUN"],
        {"name": "BENCH_RUN", "value": str(number)},
    ]
    params = {k: definition[k] for k in KEYS if definition.get(k)}
    arn = ecs.register_task_definition(**params, containerDefinitions=[container])[
        "taskDefinition"
    ]["taskDefinitionArn"]
    called = time.time()
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=arn)
    deployment = controller.primary
    if not controller.wait_steady(timeout_s) or deployment.completed_at is None:
        raise SystemExit(f"deployment {deployment.id} did not complete in {timeout_s:g} s")
    assert deployment.first_healthy_at is not None
    return deployment.first_healthy_at - called, deployment.completed_at - called


def crash_and_scale_in(ecs: Any, stack: Stack, loops: int = 4) -> tuple[int, int, int, int]:
    """(failed, sent) while a task is SIGKILLed, then while the service scales 3 -> 2 (drained)."""
    assert stack.ecs is not None and stack.gateway is not None
    controller = stack.ecs.controller
    url = stack.gateway.stage_url
    loads = [Load(url) for _ in range(loops)]
    for load in loads:
        load.__enter__()
    victim = next(t for t in controller.snapshot() if t.last_status == "RUNNING" and t.pid)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    controller.wait_steady(120)
    time.sleep(1.0)
    for load in loads:
        load.__exit__()
    crash = (sum(len(x.failures) for x in loads), sum(len(x.statuses) for x in loads))
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    controller.wait_steady(120)
    loads = [Load(url) for _ in range(loops)]
    for load in loads:
        load.__enter__()
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
    controller.wait_steady(120)
    for load in loads:
        load.__exit__()
    drain = (sum(len(x.failures) for x in loads), sum(len(x.statuses) for x in loads))
    return (*crash, *drain)


def idle_cpu(seconds: float) -> float:
    """CPU seconds per second this process used while nothing was asked of it."""
    started, cpu = time.monotonic(), time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - started)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def run_scale(scale: float, runs: int) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="bench-ecs-"))
    config = StackConfig(edge_port=0, gateway_port=0, state_dir=state, time_scale=scale)
    stack = Stack(config, progress=lambda message: None).start()
    try:
        assert stack.backend is not None and stack.gateway is not None and stack.ecs is not None
        stack.ecs.controller.wait_steady(600)
        cpu = idle_cpu(10.0)
        ecs = aws_client("ecs", stack.backend.endpoint_url, config.region)
        healthy: list[float] = []
        completed: list[float] = []
        with Load(stack.gateway.stage_url) as load:
            for number in range(runs):
                first, done = deploy_once(ecs, stack, number, timeout_s=600)
                healthy.append(first)
                completed.append(done)
                print(
                    f"  K={scale:g} run {number + 1}: first healthy {first:.2f} s, "
                    f"COMPLETED {done:.2f} s",
                    flush=True,
                )
        crash_failed, crash_sent, drain_failed, drain_sent = crash_and_scale_in(ecs, stack)
        print(
            f"  K={scale:g} SIGKILL of a task under 4 loops: {crash_failed} of {crash_sent} "
            f"requests failed; scale-in 3 -> 2: {drain_failed} of {drain_sent} failed",
            flush=True,
        )
        return {
            "healthy": healthy,
            "completed": completed,
            "requests": len(load.statuses),
            "failed": len(load.failures),
            "idle_cpu": cpu,
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 20.0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {scale: run_scale(scale, args.runs) for scale in args.scales}
    base = results[args.scales[0]]
    print(
        f"\n{'K':>5} {'healthy med':>12} {'p99':>7} {'COMPLETED med':>14} {'p99':>7} "
        f"{'ratio':>6} {'requests':>9} {'failed':>7} {'idle CPU':>9}"
    )
    for scale, result in results.items():
        median_done = statistics.median(result["completed"])
        ratio = statistics.median(base["completed"]) / median_done
        print(
            f"{scale:>5g} {statistics.median(result['healthy']):>11.2f}s "
            f"{p99(result['healthy']):>6.2f}s {median_done:>13.2f}s "
            f"{p99(result['completed']):>6.2f}s {ratio:>5.1f}x {result['requests']:>9} "
            f"{result['failed']:>7} {result['idle_cpu'] * 100:>8.1f}%"
        )


if __name__ == "__main__":
    main()
