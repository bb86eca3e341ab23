"""The ECS service scheduler: keeps ``desiredCount`` tasks of the PRIMARY deployment running.

What it copies from ECS's rolling update (``deploymentController`` ECS) and its documentation:

- A task is registered in the target group once RUNNING, and counts as healthy once the ALB finds
  it healthy (and its container health check passes, where the revision has one).
- A new revision (or ``forceNewDeployment``) makes a new PRIMARY deployment; the old one turns
  ACTIVE. New tasks start while the total stays within ``maximumPercent`` of ``desiredCount``; old
  tasks stop while the healthy ones stay at or above ``minimumHealthyPercent``.
- A task being stopped is deregistered first (DEACTIVATING: no new requests, in-flight ones
  finish, at most the target group's ``deregistration_delay``), then sent SIGTERM (STOPPING) and
  SIGKILL after the container's ``stopTimeout``; then STOPPED with ECS's ``stoppedReason``.
- ``healthCheckGracePeriodSeconds``: failed ELB health checks are ignored that long after start.
- Circuit breaker: a deployment whose tasks fail to become healthy ``threshold`` times
  (0.5 × desired, clamped to 3..200) goes FAILED and, with rollback, a new deployment of the last
  COMPLETED revision becomes PRIMARY.
- The task definition's ``memory`` is a hard limit: a task over it is killed (OutOfMemoryError).

Every AWS duration goes through one :class:`~harness.ecs.timescale.TimeScale`.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable

import httpx

from harness.ecs import model
from harness.ecs.config import ServiceConfig, TargetGroup, failure_threshold
from harness.ecs.model import Deployment, EventLog, Revision, StopCode, Task
from harness.ecs.runner import TaskRunner, ZygoteError

__all__ = ["ServiceConfig", "ServiceController", "TargetGroup", "failure_threshold"]

logger = logging.getLogger(__name__)
TICK_S = 0.1  # how often processes and timers are looked at; API calls wake the loop at once
#: while a task is PENDING its port is tried this often: it is registered (and its first health
#: check sent) within this much of listening, not up to a whole tick later
PENDING_TICK_S = 0.02
STOPPED_KEPT = 100


class ServiceController:
    """One ECS service's tasks and deployments, reconciled by a thread (see the module doc)."""

    def __init__(self, config: ServiceConfig, revision: Revision, runner: TaskRunner) -> None:
        self.config = config
        self.scale = config.time_scale
        self.runner = runner
        self.events = EventLog(config.service_name)
        self.desired_count = config.desired_count
        self.deployments: list[Deployment] = [
            Deployment(model.deployment_id(), revision, config.desired_count)
        ]
        self.tasks: list[Task] = []
        self.target_group: TargetGroup | None = None
        self.on_rollback: list[Callable[[Revision], None]] = []
        self._last_completed: Deployment | None = None
        self._steady = False
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe = httpx.Client(timeout=max(self.scale.seconds(5.0), 1.0))
        self._retry_at: dict[str, float] = {}
        self._targets: tuple[str, ...] = ()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ServiceController:
        """Start the task runner and the scheduler thread."""
        self.runner.on_exit(lambda pid, code: self._wake.set())
        self.runner.start()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="ecs-service", daemon=True)
        self._thread.start()
        logger.info("ECS service %s: %s", self.config.service_name, self.scale.describe())
        return self

    def stop(self) -> None:
        """Stop the scheduler and every task process."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.runner.stop()
        self._probe.close()

    # ------------------------------------------------------------------ the API's verbs
    @property
    def primary(self) -> Deployment:
        return self.deployments[0]

    def update(
        self,
        desired_count: int | None = None,
        revision: Revision | None = None,
        force: bool = False,
    ) -> None:
        """UpdateService: a new desired count and/or a new deployment; acted on at once."""
        with self._lock:
            if desired_count is not None:
                self.desired_count = desired_count
                for deployment in self.deployments:
                    if deployment.status == model.PRIMARY:
                        deployment.desired_count = desired_count
            if revision is not None and (force or revision.arn != self.primary.revision.arn):
                self._deploy(revision)
            elif force:
                self._deploy(self.primary.revision)
            self._steady = False
        self._wake.set()

    def stop_task(self, arn: str, reason: str) -> Task | None:
        """StopTask: the scheduler replaces it, as ECS does for a service's task."""
        with self._lock:
            task = next((t for t in self.tasks if t.arn == arn or t.id == arn), None)
            if task is not None and task.desired_status == model.RUNNING:
                self._begin_stop(task, StopCode.USER, reason or "Task stopped by user")
        self._wake.set()
        return task

    def target_urls(self) -> list[str]:
        """The registered targets (the load balancer's target group; read without the lock)."""
        return list(self._targets)

    def _publish(self) -> None:
        targets = tuple(t.url for t in self.tasks if t.registered and t.url)
        added = set(targets) - set(self._targets)
        self._targets = targets
        if added and self.target_group is not None:
            self.target_group.targets_changed()  # the ALB checks a new target when registered

    def snapshot(self) -> list[Task]:
        """The tasks, newest first (stopped ones too, as ECS keeps them for a while)."""
        with self._lock:
            return list(reversed(self.tasks))

    def counts(self, deployment: Deployment | None = None) -> tuple[int, int]:
        """(running, pending) tasks, of one deployment or of the whole service."""
        with self._lock:
            tasks = [t for t in self.tasks if t.desired_status == model.RUNNING]
            if deployment is not None:
                tasks = [t for t in tasks if t.deployment == deployment.id]
            running = sum(t.last_status == model.RUNNING for t in tasks)
            pending = sum(t.last_status in (model.PROVISIONING, model.PENDING) for t in tasks)
        return running, pending

    def steady(self) -> bool:
        """True when the PRIMARY deployment is COMPLETED and nothing else runs."""
        with self._lock:
            return self._steady

    def wait_steady(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until :meth:`steady` (or the timeout), asking the scheduler to look each time
        rather than at its next tick (a target can turn healthy between two ticks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.steady():
                return True
            self._wake.set()
            time.sleep(poll_s)
        return self.steady()

    # ------------------------------------------------------------------ scheduling
    def _deploy(self, revision: Revision) -> Deployment:
        for deployment in self.deployments:
            if deployment.status == model.PRIMARY:
                deployment.status = model.ACTIVE
                deployment.updated_at = time.time()
        deployment = Deployment(model.deployment_id(), revision, self.desired_count)
        self.deployments.insert(0, deployment)
        logger.info("deployment %s of %s started", deployment.id, revision.short)
        return deployment

    def _run(self) -> None:
        while not self._stopping.is_set():
            pending = any(t.last_status == model.PENDING for t in self.tasks)
            self._wake.wait(PENDING_TICK_S if pending else TICK_S)
            self._wake.clear()
            try:
                with self._lock:
                    self._reconcile()
            except Exception:  # keep scheduling; the log says what went wrong
                logger.exception("ECS service scheduler failed a round")
        with self._lock:
            for task in self.tasks:
                if task.last_status != model.STOPPED:
                    self._finish(task, task.stop_code or StopCode.SCHEDULER, "Service stopped")

    def _reconcile(self) -> None:
        now = time.monotonic()
        health = self.target_group.target_health() if self.target_group else {}
        for task in list(self.tasks):
            self._advance(task, now, health)
        self._schedule(now, health)
        self._settle()
        stopped = [t for t in self.tasks if t.last_status == model.STOPPED]
        for task in stopped[:-STOPPED_KEPT] if len(stopped) > STOPPED_KEPT else []:
            self.tasks.remove(task)

    def _healthy(self, task: Task, health: dict[str, str]) -> bool:
        if not (task.live and task.last_status == model.RUNNING and task.registered):
            return False
        if task.revision.health_check and task.health_status != model.HEALTHY:
            return False
        return self.target_group is None or health.get(task.url or "") == "healthy"

    def _schedule(self, now: float, health: dict[str, str]) -> None:
        primary, desired = self.primary, self.desired_count
        live = [t for t in self.tasks if t.live]
        mine = [t for t in live if t.deployment == primary.id]
        older = [t for t in live if t.deployment != primary.id]
        max_total = max(math.floor(desired * self.config.maximum_percent / 100), desired)
        min_healthy = math.ceil(desired * self.config.minimum_healthy_percent / 100)
        halted = primary.rollout_state == model.FAILED
        while not halted and len(mine) < desired and len(live) < max_total:
            if now < self._retry_at.get(primary.id, 0.0):
                break
            task = self._launch(primary)
            mine.append(task)
            live.append(task)
        healthy = [t for t in live if self._healthy(t, health)]
        surplus = sorted(mine, key=lambda t: (self._healthy(t, health), -t.created_at))
        for task in surplus[: max(0, len(mine) - desired)]:
            self._begin_stop(task, StopCode.SCHEDULER, self._scaling_reason(primary))
            if task in healthy:
                healthy.remove(task)
        for task in sorted(older, key=lambda t: (self._healthy(t, health), t.created_at)):
            if task in healthy:
                if len(healthy) - 1 < min_healthy:
                    continue
                healthy.remove(task)
            self._begin_stop(task, StopCode.SCHEDULER, self._scaling_reason(primary))

    def _scaling_reason(self, deployment: Deployment) -> str:
        return StopCode.SCALING_REASON.format(deployment=deployment.id)

    def _launch(self, deployment: Deployment) -> Task:
        tid = model.task_id()
        cfg = self.config
        task = Task(
            arn=f"arn:aws:ecs:{cfg.region}:{cfg.account_id}:task/{cfg.cluster}/{tid}",
            id=tid,
            revision=deployment.revision,
            deployment=deployment.id,
            cluster_arn=cfg.cluster_arn,
            group=f"service:{cfg.service_name}",
        )
        self.tasks.append(task)
        try:
            self.runner.launch(task)
        except ZygoteError as exc:
            logger.error("task %s could not start: %s", tid, exc)
            self._failed(task, "CannotStartContainerError: " + str(exc).splitlines()[0])
            self._finish(task, StopCode.FAILED_TO_START, task.stopped_reason or "")
            return task
        task.last_status = model.PENDING
        self.events.add(f"has started 1 tasks: (task {tid}).")
        return task

    def _advance(self, task: Task, now: float, health: dict[str, str]) -> None:
        """Move one task along its lifecycle."""
        if task.last_status == model.STOPPED:
            return
        code = self.runner.exit_code(task)
        if code is not None:
            task.exit_code = 137 if code == -signal.SIGKILL else (128 - code if code < 0 else code)
            if task.desired_status == model.RUNNING:
                self._failed(task, StopCode.EXITED_REASON)
                self._finish(task, StopCode.ESSENTIAL_EXITED, StopCode.EXITED_REASON)
            else:
                self._finish(task, task.stop_code or StopCode.SCHEDULER, task.stopped_reason or "")
            return
        if task.last_status == model.PENDING and self.runner.listening(task):
            task.last_status, task.started_at = model.RUNNING, time.time()
            task.next_check = task.started_mono = now
            task.registered = True
            self._publish()
            self.events.add(
                f"registered 1 targets in (target-group {self.config.target_group_arn})"
            )
        elif task.last_status == model.RUNNING and task.desired_status == model.RUNNING:
            self._watch_running(task, now, health)
        elif task.last_status == model.DEACTIVATING:
            drained = self.target_group is None or self.target_group.in_flight(task.url or "") == 0
            delay = self.scale.seconds(self.config.deregistration_delay_s)
            settled = now - task.stop_mono >= min(0.2, delay)  # the LB saw it leave
            if (drained and settled) or now - task.stop_mono >= delay:
                task.last_status = model.STOPPING
                task.stop_mono = now
                self.runner.signal(task, signal.SIGTERM)
        elif task.last_status == model.STOPPING:
            if now - task.stop_mono >= self.scale.seconds(self.config.stop_timeout_s):
                self.runner.signal(task, signal.SIGKILL)

    def _watch_running(self, task: Task, now: float, health: dict[str, str]) -> None:
        rss = self.runner.rss_mib(task)
        if rss is not None and rss > task.revision.memory_mib:
            logger.warning("task %s uses %.0f MiB > %d MiB", task.id, rss, task.revision.memory_mib)
            self._failed(task, StopCode.OOM_REASON)
            task.desired_status, task.stop_code = model.STOPPED, StopCode.ESSENTIAL_EXITED
            task.stopped_reason = StopCode.OOM_REASON
            task.last_status, task.stop_mono, task.stopping_at = model.STOPPING, now, time.time()
            task.registered = False
            self._publish()
            self.runner.signal(task, signal.SIGKILL)
            return
        check = task.revision.health_check
        if check and now >= task.next_check:
            task.next_check = now + self.scale.check_interval(float(check.get("interval", 30)))
            ok = self._probe_ok(task)
            in_start_period = now - task.started_mono < self.scale.seconds(
                float(check.get("startPeriod", 0))
            )
            if ok:
                task.failed_checks, task.health_status = 0, model.HEALTHY
            elif not in_start_period:
                task.failed_checks += 1
                if task.failed_checks >= int(check.get("retries", 3)):
                    task.health_status = model.UNHEALTHY
                    self._failed(task, StopCode.CONTAINER_HEALTH_REASON)
                    self.events.add(f"(task {task.id}) failed container health checks.")
                    self._begin_stop(task, StopCode.SCHEDULER, StopCode.CONTAINER_HEALTH_REASON)
                    return
        state = health.get(task.url or "")
        if not check and state == "healthy":
            task.health_status = model.HEALTHY
        if state == "healthy":
            task.ever_healthy = True
            deployment = self._deployment(task.deployment)
            if deployment is not None and deployment.first_healthy_at is None:
                deployment.first_healthy_at = time.time()
        grace = self.scale.seconds(self.config.grace_period_s)
        if state == "unhealthy" and now - task.started_mono >= grace:
            reason = StopCode.ELB_REASON.format(target_group=self.config.target_group_arn)
            self._failed(task, reason)
            self._begin_stop(task, StopCode.SCHEDULER, reason)

    def _probe_ok(self, task: Task) -> bool:
        try:
            return self._probe.get((task.url or "") + self.config.health_path).status_code == 200
        except httpx.HTTPError:
            return False

    def _deployment(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def _failed(self, task: Task, reason: str) -> None:
        """A task of a deployment died or failed its checks before it was ever healthy."""
        deployment = self._deployment(task.deployment)
        if deployment is None or task.ever_healthy:
            return
        deployment.failed_tasks += 1
        deployment.updated_at = time.time()
        self._retry_at[deployment.id] = time.monotonic() + min(0.25 * deployment.failed_tasks, 5.0)
        if (
            deployment is self.primary
            and deployment.rollout_state == model.IN_PROGRESS
            and self.config.circuit_breaker
            and deployment.failed_tasks >= failure_threshold(self.desired_count)
        ):
            self._trip(deployment)

    def _trip(self, deployment: Deployment) -> None:
        deployment.rollout_state = model.FAILED
        deployment.rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start."
        deployment.updated_at = time.time()
        self.events.add(f"(deployment {deployment.id}) deployment failed: tasks failed to start.")
        target = self._last_completed
        if not self.config.rollback or target is None:
            return
        rollback = self._deploy(target.revision)
        rollback.rollout_state_reason = (
            f"ECS deployment circuit breaker: rolling back to deploymentId {target.id}."
        )
        self.events.add(f"rolling back to deployment {target.id}.")
        for listener in self.on_rollback:
            try:
                listener(target.revision)
            except Exception:
                logger.exception("rollback listener %r failed", listener)

    def _begin_stop(self, task: Task, code: str, reason: str) -> None:
        if task.desired_status != model.RUNNING:
            return
        task.desired_status, task.stop_code, task.stopped_reason = model.STOPPED, code, reason
        task.stop_mono, task.stopping_at = time.monotonic(), time.time()
        if task.registered:
            task.registered = False
            self._publish()
            task.last_status = model.DEACTIVATING
            self.events.add("has begun draining connections on 1 tasks.")
            self.events.add(
                f"deregistered 1 targets in (target-group {self.config.target_group_arn})"
            )
        else:
            task.last_status = model.STOPPING
            self.runner.signal(task, signal.SIGTERM)
        self.events.add(f"has stopped 1 running tasks: (task {task.id}).")

    def _finish(self, task: Task, code: str, reason: str) -> None:
        task.registered = False
        task.desired_status, task.last_status = model.STOPPED, model.STOPPED
        task.stop_code = task.stop_code or code
        task.stopped_reason = task.stopped_reason or reason
        task.stopped_at = time.time()
        self._publish()
        self.runner.forget(task)

    def _settle(self) -> None:
        """Mark the PRIMARY deployment COMPLETED once it alone runs all its tasks, healthy."""
        primary = self.primary
        health = self.target_group.target_health() if self.target_group else {}
        live = [t for t in self.tasks if t.live or t.last_status != model.STOPPED]
        mine = [t for t in live if t.deployment == primary.id]
        others = [t for t in live if t.deployment != primary.id]
        for deployment in self.deployments[1:]:
            if not any(t.deployment == deployment.id for t in live):
                deployment.status = model.INACTIVE
        self.deployments = [d for d in self.deployments if d.status != model.INACTIVE]
        done = (
            not others
            and len(mine) == self.desired_count
            and all(self._healthy(t, health) for t in mine)
        )
        if done and primary.rollout_state == model.IN_PROGRESS:
            primary.rollout_state = model.COMPLETED
            primary.rollout_state_reason = f"ECS deployment {primary.id} completed."
            primary.completed_at = primary.updated_at = time.time()
            self.events.add(f"(deployment {primary.id}) deployment completed.")
        if done and primary.rollout_state == model.COMPLETED:
            self._last_completed = primary
        if done and not self._steady:
            self.events.add("has reached a steady state.")
        self._steady = done and primary.rollout_state == model.COMPLETED
