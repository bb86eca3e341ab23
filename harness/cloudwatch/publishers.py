"""What AWS publishes for the stack's parts: AWS/ECS, AWS/ApplicationELB and AWS/ApiGateway.

Each publisher turns what a part observes into the metrics, units and dimensions AWS uses:

- ``AWS/ECS`` CPUUtilization and MemoryUtilization (ClusterName, ServiceName), Percent: a task's
  CPU time over the interval against its ``cpu`` units (1,024 units = one vCPU, so 256 is a
  quarter of a core) and its resident memory against its ``memory`` MiB; the service's value is
  the statistic over its tasks, as ECS reports service utilisation.
- ``AWS/ApplicationELB`` (LoadBalancer, TargetGroup): RequestCount, TargetResponseTime (seconds,
  from the request sent to the target to its response headers), HTTPCode_Target_5XX_Count (5xx
  answered by a target), HTTPCode_ELB_5XX_Count (5xx the load balancer generated itself),
  HealthyHostCount and UnHealthyHostCount (sampled). LoadBalancer and TargetGroup dimensions
  are the ARN suffixes ``app/<name>/<id>`` and ``targetgroup/<name>/<id>``.
- ``AWS/ApiGateway`` (ApiName, Stage): Count, Latency and IntegrationLatency (Milliseconds),
  4XXError and 5XXError (Count), from the gateway's access-log record of each request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from harness.cloudwatch.metrics import MetricSink

__all__ = [
    "ApiGatewayMetrics",
    "EcsServiceMetrics",
    "LoadBalancerMetrics",
    "TaskProcess",
    "elb_dimension",
]

CPU_UNITS_PER_VCPU = 1024


class TaskProcess(NamedTuple):
    """One running task as the metrics and logs see it."""

    task_id: str
    pid: int
    cpu_units: int
    memory_mib: int
    log_path: Path | None = None


TaskLister = Callable[[], list[TaskProcess]]


def elb_dimension(kind: str, name: str, account_id: str, region: str) -> str:
    """``app/<name>/<id>`` or ``targetgroup/<name>/<id>``, with a stable 16-hex id as AWS gives."""
    digest = hashlib.sha256(f"{kind}/{name}/{account_id}/{region}".encode()).hexdigest()[:16]
    return f"{kind}/{name}/{digest}"


@dataclass
class _CpuMark:
    cpu_s: float
    at: float


@dataclass
class EcsServiceMetrics:
    """Collector of ``AWS/ECS`` CPUUtilization / MemoryUtilization for one service's tasks."""

    cluster: str
    service: str
    tasks: TaskLister
    clock: Callable[[], float] = time.monotonic
    _marks: dict[str, _CpuMark] = field(default_factory=dict)
    #: the last utilisation measured per task id: (cpu %, memory %), for ``status``
    last: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def dimensions(self) -> tuple[tuple[str, str], ...]:
        return (("ClusterName", self.cluster), ("ServiceName", self.service))

    def __call__(self, sink: MetricSink) -> None:
        seen: dict[str, tuple[float, float]] = {}
        tasks = self.tasks()
        for task in tasks:
            measured = self._measure(task)
            if measured is not None:
                seen[task.task_id] = measured
        for gone in set(self._marks) - {task.task_id for task in tasks}:
            self._marks.pop(gone, None)
        self.last = seen
        for cpu, memory in seen.values():
            sink.add("AWS/ECS", "CPUUtilization", self.dimensions, cpu, "Percent")
            sink.add("AWS/ECS", "MemoryUtilization", self.dimensions, memory, "Percent")

    def _measure(self, task: TaskProcess) -> tuple[float, float] | None:
        try:
            process = psutil.Process(task.pid)
            with process.oneshot():
                processes = [process, *process.children(recursive=True)]
                cpu_s = sum(_cpu_seconds(p) for p in processes)
                rss = sum(_rss(p) for p in processes)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._marks.pop(task.task_id, None)
            return None
        now = self.clock()
        previous = self._marks.get(task.task_id)
        self._marks[task.task_id] = _CpuMark(cpu_s, now)
        if previous is None or now <= previous.at:
            return None  # the first sample of a task only sets its mark
        cores = task.cpu_units / CPU_UNITS_PER_VCPU
        cpu = 100.0 * (cpu_s - previous.cpu_s) / (now - previous.at) / cores
        memory = 100.0 * rss / (task.memory_mib * 1024 * 1024)
        return max(cpu, 0.0), memory


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0.0
    return float(times.user + times.system)


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0


@dataclass
class LoadBalancerMetrics:
    """``AWS/ApplicationELB`` for one load balancer and target group."""

    sink: MetricSink
    load_balancer: str  # app/<name>/<id>
    target_group: str  # targetgroup/<name>/<id>
    target_health: Callable[[], Mapping[str, str]] | None = None

    @property
    def dimensions(self) -> tuple[tuple[str, str], ...]:
        return (("TargetGroup", self.target_group), ("LoadBalancer", self.load_balancer))

    def request(self, status: int, target_seconds: float | None) -> None:
        """One request answered: by a target after ``target_seconds``, or by the ALB (None)."""
        lb_only = (("LoadBalancer", self.load_balancer),)
        add = self.sink.add
        add("AWS/ApplicationELB", "RequestCount", self.dimensions, 1, "Count")
        add("AWS/ApplicationELB", "RequestCount", lb_only, 1, "Count")
        if target_seconds is not None:
            add(
                "AWS/ApplicationELB",
                "TargetResponseTime",
                self.dimensions,
                target_seconds,
                "Seconds",
            )
            if status >= 500:
                add("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", self.dimensions, 1, "Count")
        elif status >= 500:
            add("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb_only, 1, "Count")
            add("AWS/ApplicationELB", f"HTTPCode_ELB_{status}_Count", lb_only, 1, "Count")

    def __call__(self, sink: MetricSink) -> None:
        """Collector: HealthyHostCount / UnHealthyHostCount of the target group."""
        if self.target_health is None:
            return
        states = list(self.target_health().values())
        healthy = sum(1 for s in states if s == "healthy")
        sink.add("AWS/ApplicationELB", "HealthyHostCount", self.dimensions, healthy, "Count")
        sink.add(
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            self.dimensions,
            len(states) - healthy,
            "Count",
        )


@dataclass
class ApiGatewayMetrics:
    """``AWS/ApiGateway`` for one stage, fed with the gateway's access-log records."""

    sink: MetricSink
    api_name: str
    stage: str

    def __call__(self, record: Mapping[str, Any]) -> None:
        dims = (("ApiName", self.api_name), ("Stage", self.stage))
        status = int(record.get("status") or 0)
        add = self.sink.add
        add("AWS/ApiGateway", "Count", dims, 1, "Count")
        add("AWS/ApiGateway", "4XXError", dims, 1 if 400 <= status < 500 else 0, "Count")
        add("AWS/ApiGateway", "5XXError", dims, 1 if status >= 500 else 0, "Count")
        if record.get("latencyMs") is not None:
            add("AWS/ApiGateway", "Latency", dims, float(record["latencyMs"]), "Milliseconds")
        if record.get("integrationLatencyMs") is not None:
            add(
                "AWS/ApiGateway",
                "IntegrationLatency",
                dims,
                float(record["integrationLatencyMs"]),
                "Milliseconds",
            )
