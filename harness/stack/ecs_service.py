"""The ECS service of ``infra/`` as the stack runs it: scheduler, tasks, the ALB, the ECS API.

Builds a :class:`harness.ecs.controller.ServiceController` from the task and service definitions
and the target group of ``infra/``, puts the load balancer in front of its tasks with the target
group's health check (every period divided by the time scale), and registers the scheduler's ECS
API with the embedded endpoint so ``aws ecs ...`` against it changes what runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from harness.ecs.api import EcsApi
from harness.ecs.controller import ServiceConfig, ServiceController
from harness.ecs.model import Revision
from harness.ecs.runner import TaskRunner
from harness.ecs.timescale import TimeScale
from harness.ingress.load_balancer import LoadBalancer
from harness.ingress.replicas import ReplicaInfo, tail
from harness.stack.infra import Infra

__all__ = ["EcsService", "TasksNotRunning"]

ECS_DELEGATE_PATH = "/_harness/ecs-delegate"  # harness.aws.endpoint serves it


class TasksNotRunning(RuntimeError):
    """The service's first tasks did not start; the message has a task's log tail."""


class EcsService:
    """Scheduler + load balancer + ECS API for the one service ``infra/`` defines."""

    def __init__(
        self,
        infra: Infra,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        root: Path,
        time_scale: TimeScale,
        desired_count: int | None = None,
    ) -> None:
        self.infra = infra
        self.scale = time_scale
        service = infra.service_definition
        deployment = service.get("deploymentConfiguration", {})
        breaker = deployment.get("deploymentCircuitBreaker", {})
        check = infra.health_check
        region, account = infra.region, infra.account_id
        family = infra.task_definition["family"]
        self.config = ServiceConfig(
            cluster=infra.cluster_name,
            service_name=str(service["serviceName"]),
            region=region,
            account_id=account,
            desired_count=int(
                service["desiredCount"] if desired_count is None else desired_count
            ),
            minimum_healthy_percent=int(deployment.get("minimumHealthyPercent", 100)),
            maximum_percent=int(deployment.get("maximumPercent", 200)),
            circuit_breaker=bool(breaker.get("enable", False)),
            rollback=bool(breaker.get("rollback", False)),
            grace_period_s=float(service.get("healthCheckGracePeriodSeconds", 0)),
            deregistration_delay_s=check.deregistration_delay_s,
            stop_timeout_s=float(infra.container.get("stopTimeout", 30)),
            health_path=check.path,
            target_group_arn=(
                f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/"
                f"{check.target_group_name or family}/0123456789abcdef"
            ),
            time_scale=time_scale,
        )
        first = Revision.from_task_definition(
            {
                **infra.task_definition,
                "revision": 1,
                "taskDefinitionArn": f"arn:aws:ecs:{region}:{account}:task-definition/{family}:1",
            }
        )
        runner = TaskRunner(
            "service.app:create_app",
            base_env={**os.environ, **env},
            overrides={k: v for k, v in env.items() if k.startswith("AWS_") or k == "PYTHONPATH"},
            log_dir=log_dir,
            app_dir=root,
        )
        self.controller = ServiceController(self.config, first, runner)
        self.load_balancer: LoadBalancer | None = None
        self.api: EcsApi | None = None

    def start(self) -> EcsService:
        """Put the load balancer up, then start the scheduler: it launches the first tasks and
        registers each in the target group once it runs, as ECS does with an ALB that exists
        before the service. Returns at once; :meth:`wait_healthy` waits for the tasks."""
        check, scale = self.infra.health_check, self.scale
        controller = self.controller
        self.load_balancer = LoadBalancer(
            controller,
            health_path=check.path,
            interval_s=scale.check_interval(check.interval_s),
            # a loaded laptop needs a second to answer; the timeout never scales below it
            timeout_s=min(check.timeout_s, max(scale.seconds(check.timeout_s), 1.0)),
            healthy_threshold=check.healthy_threshold,
            unhealthy_threshold=check.unhealthy_threshold,
        )
        controller.target_group = self.load_balancer
        controller.start()  # the zygote imports the service while the load balancer starts
        self.load_balancer.start()
        return self

    def wait_healthy(self, start_timeout_s: float = 60.0) -> None:
        """Wait until ``desiredCount`` tasks are healthy targets of the load balancer (each passed
        the one health check a new target needs); TasksNotRunning with a log tail if they fail.
        :meth:`wait_steady` then waits for the deployment to be COMPLETED."""
        controller, balancer = self.controller, self.load_balancer
        assert balancer is not None, "start() first"
        deadline = time.monotonic() + start_timeout_s
        while len(balancer.healthy_targets()) < controller.desired_count:
            stopped = [t for t in controller.snapshot() if t.last_status == "STOPPED"]
            if time.monotonic() > deadline or len(stopped) >= 3:
                last = stopped[0] if stopped else None
                log = tail(last.log_path) if last and last.log_path else ""
                reason = last.stopped_reason if last else "not healthy in time"
                raise TasksNotRunning(
                    f"the {self.config.service_name} tasks did not start ({reason})"
                    + (f"\n--- last lines of {last.log_path} ---\n{log}" if last else "")
                )
            time.sleep(0.01)

    def wait_steady(self, timeout_s: float = 60.0) -> None:
        """Wait until the service is steady: its one deployment COMPLETED (every task healthy
        for the load balancer and, with a container health check, for ECS), what ``aws ecs wait
        services-stable`` waits for and what ``status`` shows right after ``up``."""
        controller = self.controller
        if not controller.wait_steady(timeout_s, poll_s=0.005):
            primary = controller.primary
            raise TasksNotRunning(
                f"the {self.config.service_name} service did not reach a steady state in "
                f"{timeout_s:.0f} s ({primary.rollout_state_reason or primary.rollout_state})"
            )

    def serve_api(self, endpoint_url: str, access_key: str) -> None:
        """Answer the endpoint's ECS requests for this service from now on."""
        self.api = EcsApi(self.controller, endpoint_url, access_key).start()
        httpx.post(
            endpoint_url.rstrip("/") + ECS_DELEGATE_PATH, json={"url": self.api.url}, timeout=10
        ).raise_for_status()

    @property
    def replicas(self) -> list[ReplicaInfo]:
        """The running tasks as (id, url, pid, state), as :class:`ReplicaSet` lists replicas."""
        return [
            ReplicaInfo(
                t.id, t.url, t.pid or 0, "HEALTHY" if t.health_status == "HEALTHY" else "STARTING"
            )
            for t in self.controller.snapshot()
            if t.url and t.live and t.last_status == "RUNNING"
        ]

    def target_urls(self) -> list[str]:
        """The registered tasks (the load balancer's targets)."""
        return self.controller.target_urls()

    def stop(self) -> None:
        """Stop the API, the load balancer and every task."""
        for part in (self.api, self.load_balancer):
            if part is not None:
                part.stop()
        self.controller.stop()

    def state(self) -> dict[str, Any]:
        """Tasks and the latest deployment, for ``.harness/state.json`` and ``status``."""
        controller = self.controller
        primary = controller.primary
        running, pending = controller.counts(primary)
        return {
            "time_scale": self.scale.factor,
            "time_scale_text": self.scale.describe(),
            "cluster": self.config.cluster,
            "service": self.config.service_name,
            "desired_count": controller.desired_count,
            "deployment": {
                "id": primary.id,
                "task_definition": primary.revision.short,
                "rollout_state": primary.rollout_state,
                "running": running,
                "pending": pending,
                "failed_tasks": primary.failed_tasks,
            },
            "tasks": [
                {
                    "id": t.id,
                    "revision": t.revision.short,
                    "last_status": t.last_status,
                    "health": t.health_status,
                    "url": t.url,
                    "pid": t.pid,
                }
                for t in controller.snapshot()
                if t.last_status != "STOPPED"
            ],
        }
