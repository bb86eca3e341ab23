"""A service controller over fake-service tasks behind a real load balancer, at a high time scale."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.ecs.controller import ServiceConfig, ServiceController
from harness.ecs.model import Revision
from harness.ecs.runner import TaskRunner
from harness.ecs.timescale import TimeScale
from harness.ingress.load_balancer import LoadBalancer
from tests.load_loop import Load
from tests.polling import wait_for

__all__ = ["Load", "Service", "revision", "wait_for"]

APPS_DIR = Path(__file__).parents[1] / "ingress" / "apps"
SCALE = TimeScale(20.0)  # health checks every 0.5 s, grace 3 s, deregistration delay 1.5 s


def revision(
    number: int, memory: int = 512, command: list[str] | None = None, **env: str
) -> Revision:
    """A revision of the fake service's task definition with ``env`` (and ``command``)."""
    return Revision.from_task_definition(
        {
            "family": "svc",
            "revision": number,
            "taskDefinitionArn": f"arn:aws:ecs:ap-southeast-1:000000000000:task-definition/svc:{number}",
            "memory": str(memory),
            "cpu": "256",
            "containerDefinitions": [
                {
                    "name": "app",
                    "environment": [{"name": k, "value": v} for k, v in env.items()],
                    **({"command": command} if command else {}),
                }
            ],
        }
    )


@dataclass
class Service:
    controller: ServiceController
    lb: LoadBalancer

    def tasks(self, status: str | None = None) -> list[Any]:
        return [t for t in self.controller.snapshot() if status is None or t.last_status == status]


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    made: list[Service] = []

    def make(
        desired: int = 2,
        first: Revision | None = None,
        lb_interval_s: float | None = None,
        **options: Any,
    ) -> Service:
        runner = TaskRunner(
            "fake_service:create_app",
            base_env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            log_dir=tmp_path / f"svc-{len(made)}",
            app_dir=APPS_DIR,
        )
        config = ServiceConfig(
            cluster="c", service_name="svc", desired_count=desired, time_scale=SCALE, **options
        )
        controller = ServiceController(config, first or revision(1), runner)
        lb = LoadBalancer(
            controller,
            interval_s=SCALE.seconds(10) if lb_interval_s is None else lb_interval_s,
            healthy_threshold=2,
            unhealthy_threshold=3,
            timeout_s=1.0,
        )
        controller.target_group = lb
        controller.start()
        lb.start()
        service = Service(controller, lb)
        made.append(service)
        return service

    yield make
    for service in made:
        service.lb.stop()
        service.controller.stop()
