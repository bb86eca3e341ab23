"""ECS's nouns as the API shows them: tasks, deployments, service events (wire shapes, no logic).

Field names, states and texts follow AWS's ECS API reference (``Task``, ``Deployment``,
``ServiceEvent``): a task's ``lastStatus`` goes PROVISIONING → PENDING → RUNNING → DEACTIVATING →
STOPPING → STOPPED; a deployment is PRIMARY (the newest), ACTIVE (older ones still running tasks)
or INACTIVE, with ``rolloutState`` IN_PROGRESS | COMPLETED | FAILED.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Deployment",
    "EventLog",
    "Revision",
    "StopCode",
    "Task",
    "deployment_id",
    "task_id",
]

# Task.lastStatus, in lifecycle order
PROVISIONING, PENDING, RUNNING = "PROVISIONING", "PENDING", "RUNNING"
DEACTIVATING, STOPPING, STOPPED = "DEACTIVATING", "STOPPING", "STOPPED"
LIVE_STATES = (PROVISIONING, PENDING, RUNNING)
# healthStatus
UNKNOWN, HEALTHY, UNHEALTHY = "UNKNOWN", "HEALTHY", "UNHEALTHY"
# Deployment.status and rolloutState
PRIMARY, ACTIVE, INACTIVE = "PRIMARY", "ACTIVE", "INACTIVE"
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"


class StopCode:
    """``Task.stopCode`` values with ECS's ``stoppedReason`` texts."""

    ESSENTIAL_EXITED = "EssentialContainerExited"
    FAILED_TO_START = "TaskFailedToStart"
    SCHEDULER = "ServiceSchedulerInitiated"
    USER = "UserInitiated"

    EXITED_REASON = "Essential container in task exited"
    OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
    ELB_REASON = "Task failed ELB health checks in (target-group {target_group})"
    CONTAINER_HEALTH_REASON = "Task failed container health checks"
    SCALING_REASON = "Scaling activity initiated by (deployment {deployment})"


def task_id() -> str:
    """A 32-hex-digit task id, as ECS makes them."""
    return uuid.uuid4().hex


def deployment_id() -> str:
    """``ecs-svc/`` and 19 digits, as ECS names deployments."""
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


@dataclass(frozen=True)
class Revision:
    """One task definition revision, reduced to what changes the local process."""

    arn: str
    family: str
    revision: int
    container_name: str
    environment: dict[str, str]
    cpu: int
    memory_mib: int
    health_check: dict[str, Any] | None
    command: list[str] | None = None
    entry_point: list[str] | None = None

    @classmethod
    def from_task_definition(cls, definition: dict[str, Any]) -> Revision:
        """Read a DescribeTaskDefinition ``taskDefinition`` (or a RegisterTaskDefinition input)."""
        container = dict(definition["containerDefinitions"][0])
        family = str(definition["family"])
        revision = int(definition.get("revision", 1))
        arn = str(definition.get("taskDefinitionArn") or f"{family}:{revision}")
        memory = definition.get("memory") or container.get("memory") or 512
        return cls(
            arn=arn,
            family=family,
            revision=revision,
            container_name=str(container.get("name", family)),
            environment={e["name"]: str(e["value"]) for e in container.get("environment", [])},
            cpu=int(definition.get("cpu") or container.get("cpu") or 256),
            memory_mib=int(memory),
            health_check=container.get("healthCheck"),
            command=container.get("command"),
            entry_point=container.get("entryPoint"),
        )

    @property
    def short(self) -> str:
        """``family:revision``."""
        return f"{self.family}:{self.revision}"


@dataclass
class Task:
    """One ECS task: a replica process of one revision, started by one deployment."""

    arn: str
    id: str
    revision: Revision
    deployment: str
    cluster_arn: str
    group: str
    last_status: str = PROVISIONING
    desired_status: str = RUNNING
    health_status: str = UNKNOWN
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    url: str | None = None
    pid: int | None = None
    log_path: Path | None = None
    registered: bool = False  # in the target group (gets traffic once the ALB finds it healthy)
    ever_healthy: bool = False
    failed_checks: int = 0
    next_check: float = 0.0
    started_mono: float = 0.0  # when it became RUNNING, on the monotonic clock
    stop_mono: float = 0.0  # when its current stop phase (DEACTIVATING, STOPPING) began

    @property
    def live(self) -> bool:
        """Not being stopped and not stopped."""
        return self.last_status in LIVE_STATES and self.desired_status == RUNNING

    def describe(self) -> dict[str, Any]:
        """The task as DescribeTasks answers it."""
        container: dict[str, Any] = {
            "containerArn": self.arn.replace(":task/", ":container/")
            + "/"
            + uuid.uuid5(uuid.NAMESPACE_URL, self.arn).hex[:8],
            "taskArn": self.arn,
            "name": self.revision.container_name,
            "lastStatus": self.last_status,
            "healthStatus": self.health_status,
            "cpu": str(self.revision.cpu),
            "memory": str(self.revision.memory_mib),
        }
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.stop_code == StopCode.ESSENTIAL_EXITED and self.stopped_reason:
            container["reason"] = self.stopped_reason
        answer: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.revision.arn,
            "group": self.group,
            "startedBy": self.deployment,
            "launchType": "FARGATE",
            "platformVersion": "1.4.0",
            "cpu": str(self.revision.cpu),
            "memory": str(self.revision.memory_mib),
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "healthStatus": self.health_status,
            "createdAt": self.created_at,
            "connectivity": "CONNECTED",
            "availabilityZone": "local",
            "containers": [container],
            "version": 1,
        }
        for key, value in (
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
            ("executionStoppedAt", self.stopped_at),
            ("stopCode", self.stop_code),
            ("stoppedReason", self.stopped_reason),
        ):
            if value is not None:
                answer[key] = value
        return answer


@dataclass
class Deployment:
    """One deployment of the service: a revision and the tasks it started."""

    id: str
    revision: Revision
    desired_count: int
    status: str = PRIMARY
    rollout_state: str = IN_PROGRESS
    rollout_state_reason: str = ""
    failed_tasks: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    completed_at: float | None = None
    first_healthy_at: float | None = None

    def __post_init__(self) -> None:
        self.rollout_state_reason = (
            self.rollout_state_reason or f"ECS deployment {self.id} in progress."
        )

    def describe(self, running: int, pending: int) -> dict[str, Any]:
        """The deployment as DescribeServices answers it."""
        return {
            "id": self.id,
            "status": self.status,
            "taskDefinition": self.revision.arn,
            "desiredCount": self.desired_count,
            "pendingCount": pending,
            "runningCount": running,
            "failedTasks": self.failed_tasks,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "launchType": "FARGATE",
            "platformVersion": "1.4.0",
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.rollout_state_reason,
        }


class EventLog:
    """The service's ``events``: newest first, at most 100, as DescribeServices keeps them."""

    def __init__(self, service_name: str, limit: int = 100) -> None:
        self.service_name = service_name
        self._limit = limit
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, message: str) -> None:
        """Record ``(service NAME) message``."""
        event = {
            "id": str(uuid.uuid4()),
            "createdAt": time.time(),
            "message": f"(service {self.service_name}) {message}",
        }
        with self._lock:
            self._events.insert(0, event)
            del self._events[self._limit :]

    def describe(self) -> list[dict[str, Any]]:
        """A copy of the events, newest first."""
        with self._lock:
            return [dict(event) for event in self._events]

    def messages(self) -> list[str]:
        """Just the texts, oldest first (for tests and logs)."""
        return [event["message"] for event in reversed(self.describe())]
