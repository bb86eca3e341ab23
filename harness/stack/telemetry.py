"""The AWS side of the running service, wired to the stack: task-role credentials, CloudWatch
metrics (AWS/ECS, AWS/ApplicationELB, AWS/ApiGateway), awslogs task logs and target tracking.

Every piece takes the tasks as a callable (:class:`harness.cloudwatch.TaskProcess` rows), so it
works with today's :class:`~harness.ingress.replicas.ReplicaSet` and with ECS tasks alike. Time
runs ``time_scale`` K times faster than on AWS: metric periods, alarm evaluation and cooldowns.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import boto3

from harness.autoscaling.controller import Autoscaler
from harness.autoscaling.target_tracking import ScalableTarget, TargetTrackingPolicy
from harness.cloudwatch import (
    ApiGatewayMetrics,
    AwsLogsConfig,
    EcsServiceMetrics,
    LoadBalancerMetrics,
    MetricSink,
    TaskLogShipper,
    TaskProcess,
    elb_dimension,
    period_for,
)
from harness.iam import ContainerCredentialsServer, RoleCredentials
from harness.stack.infra import Infra
from harness.stack.provision import aws_client

__all__ = ["Telemetry", "ecs_tasks"]

logger = logging.getLogger(__name__)

#: botocore looks for static keys and shared files before the container endpoint: a task has none
#: (an empty variable counts as unset; AWS_PROFILE cannot be unset this way and must not be set)
NO_STATIC_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/aws/config",
}


def ecs_tasks(controller: Any) -> Callable[[], list[TaskProcess]]:
    """The running ECS tasks of a :class:`harness.ecs.controller.ServiceController`, each with its
    own revision's cpu units and memory."""

    def tasks() -> list[TaskProcess]:
        return [
            TaskProcess(t.id, t.pid, t.revision.cpu, t.revision.memory_mib, t.log_path)
            for t in controller.snapshot()
            if t.pid and t.last_status == "RUNNING"
        ]

    return tasks


class Telemetry:
    """Owns the credentials server, the metric sink, the log shipper and the autoscalers."""

    def __init__(
        self,
        infra: Infra,
        endpoint_url: str,
        region: str,
        *,
        time_scale: float = 1.0,
        session: boto3.session.Session | None = None,  # shared with provisioning: data read once
    ) -> None:
        self.infra = infra
        self.endpoint_url = endpoint_url
        self.region = region
        self.time_scale = time_scale
        self._session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.credentials: ContainerCredentialsServer | None = None
        self.sink = MetricSink(self.client("cloudwatch"), period_s=period_for(time_scale))
        self.ecs_metrics: EcsServiceMetrics | None = None
        self.logs: TaskLogShipper | None = None
        self.access_logs: TaskLogShipper | None = None
        self.autoscalers: list[Autoscaler] = []
        self._access_log_handles: list[tuple[threading.Lock, TextIO]] = []

    def client(self, service: str) -> Any:
        """One boto3 client per service on the endpoint (clients are thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = aws_client(
                    service, self.endpoint_url, self.region, self._session
                )
            return self._clients[service]

    # -- task role --------------------------------------------------------------------------
    def task_environment(self) -> dict[str, str]:
        """Start the task role's credentials endpoint; the variables a task's container gets."""
        role_arn = self._task_role_arn()
        if role_arn is None:
            return {}
        role = RoleCredentials(self.client("sts"), role_arn, "ecs-task")
        self.credentials = ContainerCredentialsServer(role).start()
        return {**NO_STATIC_CREDENTIALS, **self.credentials.environment()}

    def _task_role_arn(self) -> str | None:
        arn = self.infra.task_definition.get("taskRoleArn")
        if not arn:
            return None
        return f"arn:aws:iam::{self.infra.account_id}:role/{str(arn).rsplit('/', 1)[-1]}"

    # -- metrics and logs -------------------------------------------------------------------
    def watch_tasks(self, tasks: Callable[[], list[TaskProcess]]) -> None:
        """AWS/ECS metrics and awslogs shipping for the service's tasks."""
        service = self.infra.service_definition
        self.ecs_metrics = EcsServiceMetrics(
            self.infra.cluster_name, str(service["serviceName"]), tasks
        )
        self.sink.add_collector(self.ecs_metrics)
        config = AwsLogsConfig.from_container(self.infra.container)
        if config is not None:
            self.logs = TaskLogShipper(self.client("logs"), config, tasks)

    def load_balancer_metrics(
        self, target_health: Callable[[], dict[str, str]]
    ) -> Callable[[int, float | None], None]:
        """AWS/ApplicationELB: the host counts collector, and the per-request observer."""
        infra = self.infra
        metrics = LoadBalancerMetrics(
            self.sink,
            elb_dimension("app", infra.load_balancer_name, infra.account_id, self.region),
            elb_dimension("targetgroup", infra.target_group_name, infra.account_id, self.region),
            target_health,
        )
        self.sink.add_collector(metrics)
        return metrics.request

    def gateway_access_log(self, path: Path) -> Callable[[dict[str, Any]], None]:
        """The gateway's access-log callable: the file as before, and AWS/ApiGateway metrics."""
        title = str(self.infra.api_document.get("info", {}).get("title", "api"))
        metrics = ApiGatewayMetrics(self.sink, title, self.infra.api_stage)
        lock = threading.Lock()
        group = self.infra.api_access_log_group
        if group is not None:  # the stage's access-log group: one stream for the stage
            stream = f"{title}/{self.infra.api_stage}"
            self.access_logs = TaskLogShipper(
                self.client("logs"),
                AwsLogsConfig(group, "", ""),
                lambda: [TaskProcess(stream, 0, 0, 0, path)],
            )

        # Opened once, not per request (it was a measurable share of the stack process's CPU
        # per request); each line is flushed so `query-harness logs` and the shipper see it.
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
        self._access_log_handles.append((lock, handle))

        def write(record: dict[str, Any]) -> None:
            metrics(record)
            line = json.dumps(record, separators=(",", ":")) + "\n"
            with lock:
                if handle.closed:  # after stop(): the gateway may answer while the stack stops
                    with path.open("a", encoding="utf-8") as late:
                        late.write(line)
                else:
                    handle.write(line)
                    handle.flush()

        return write

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Publish metrics and logs, register and run the target-tracking policies (the ECS
        service must exist on the endpoint)."""
        self.sink.start()
        for shipper in (self.logs, self.access_logs):
            if shipper is not None:
                shipper.start()
        for spec in self.infra.scaling:
            target = ScalableTarget(
                spec.resource_id,
                spec.min_capacity,
                spec.max_capacity,
                spec.service_namespace,
                spec.scalable_dimension,
            )
            policy = TargetTrackingPolicy(
                spec.policy_name,
                spec.target_value,
                spec.metric_type,
                spec.scale_out_cooldown_s,
                spec.scale_in_cooldown_s,
                spec.disable_scale_in,
            )
            scaler = Autoscaler(
                self.client, self.endpoint_url, target, policy, time_scale=self.time_scale
            )
            try:
                scaler.register()
            except Exception as exc:  # e.g. a LocalStack without Application Auto Scaling
                logger.error(
                    "target tracking for %s is off: registering it failed: %s",
                    spec.resource_id,
                    exc,
                )
                continue
            self.autoscalers.append(scaler.start())
        logger.info(
            "telemetry: metric period %.2f s (time scale %g), %d target-tracking policies",
            self.sink.period_s,
            self.time_scale,
            len(self.autoscalers),
        )

    def stop(self) -> None:
        """Stop everything; what is buffered is sent."""
        for scaler in self.autoscalers:
            scaler.stop()
        self.autoscalers = []
        for part in (self.logs, self.access_logs, self.sink):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                logger.exception("stopping %r failed", part)
        if self.credentials is not None:
            self.credentials.stop()
            self.credentials = None
        for lock, handle in self._access_log_handles:
            with lock:
                handle.close()
        self._access_log_handles = []
