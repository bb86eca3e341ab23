"""The ECS service scheduler: desired count, replacement, rolling deployments, circuit breaker."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.harness.ecs.conftest import Load, revision, wait_for


def test_service_starts_desired_tasks_and_reaches_steady_state(service_factory) -> None:
    service = service_factory(desired=2)
    assert service.controller.wait_steady(30)
    running = service.tasks("RUNNING")
    assert len(running) == 2
    assert {t.health_status for t in running} == {"HEALTHY"}
    assert all(t.started_at and t.revision.short == "svc:1" for t in running)
    messages = service.controller.events.messages()
    assert messages[-1] == "(service svc) has reached a steady state."
    assert sum("has started 1 tasks" in m for m in messages) == 2
    assert service.controller.primary.rollout_state == "COMPLETED"


def test_waiting_for_steady_state_asks_the_scheduler_to_look_rather_than_its_next_tick(
    service_factory, monkeypatch
) -> None:
    # `up` reports ready once the deployment is COMPLETED (`aws ecs wait services-stable`); with
    # a scheduler that looks only every 30 s, the wait must still end as the targets turn healthy
    from harness.ecs import controller as controller_module

    monkeypatch.setattr(controller_module, "TICK_S", 30.0)
    service = service_factory(desired=2)
    assert service.controller.wait_steady(20)
    assert service.controller.primary.rollout_state == "COMPLETED"


def test_a_registered_task_is_health_checked_at_once_not_after_an_interval(
    service_factory,
) -> None:
    # ALB: a registered target is 'initial' while its first health check runs; one pass makes it
    # healthy. The check is sent on registration: with checks every 120 s the tasks (registered
    # after the load balancer's start-up round) would otherwise wait two minutes.
    service = service_factory(desired=2, lb_interval_s=120.0)
    assert wait_for(lambda: len(service.lb.healthy_targets()) == 2, timeout_s=30)
    assert service.controller.wait_steady(30)
    service.controller.update(desired_count=3)  # a task registered later gets its check too
    assert wait_for(lambda: len(service.lb.healthy_targets()) == 3, timeout_s=30)


def test_service_desired_count_scales_out_and_in(service_factory) -> None:
    service = service_factory(desired=1)
    assert service.controller.wait_steady(30)
    service.controller.update(desired_count=3)
    assert wait_for(lambda: len(service.lb.healthy_targets()) == 3)
    service.controller.update(desired_count=1)
    assert wait_for(lambda: len(service.tasks("STOPPED")) == 2)
    stopped = service.tasks("STOPPED")
    deployment = service.controller.primary.id
    assert {t.stopped_reason for t in stopped} == {
        f"Scaling activity initiated by (deployment {deployment})"
    }
    assert {t.stop_code for t in stopped} == {"ServiceSchedulerInitiated"}
    for task in stopped:  # wall-clock timestamps, in lifecycle order
        assert task.started_at and task.stopping_at and task.stopped_at
        assert task.created_at <= task.started_at <= task.stopping_at <= task.stopped_at
        assert task.stopping_at > 1.7e9
    assert service.controller.wait_steady(30)


def test_killed_task_becomes_stopped_and_is_replaced(service_factory) -> None:
    service = service_factory(desired=2)
    assert service.controller.wait_steady(30)
    victim = service.tasks("RUNNING")[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_for(lambda: victim.last_status == "STOPPED")
    assert victim.stopped_reason == "Essential container in task exited"
    assert victim.stop_code == "EssentialContainerExited" and victim.exit_code == 137
    assert wait_for(lambda: len(service.lb.healthy_targets()) == 2)
    assert victim.url not in service.lb.healthy_targets()


def test_rolling_deployment_under_load_loses_nothing(service_factory) -> None:
    service = service_factory(desired=2)
    assert service.controller.wait_steady(30)
    old = service.tasks("RUNNING")
    with Load(service.lb.url) as load:
        started = time.monotonic()
        service.controller.update(revision=revision(2, FAKE_COLOUR="green"))
        assert wait_for(lambda: service.controller.steady(), 60)
        took = time.monotonic() - started
    print(f"deployment took {took:.2f} s, {len(load.statuses)} requests")
    assert load.failures == [] and len(load.statuses) > 5
    assert {t.last_status for t in old} == {"STOPPED"}
    assert all(t.stopped_reason and "Scaling activity initiated" in t.stopped_reason for t in old)
    new = service.tasks("RUNNING")
    assert {t.revision.short for t in new} == {"svc:2"} and len(new) == 2
    url = service.lb.url + "/env/FAKE_COLOUR"
    assert httpx.get(url).json()["value"] == "green"
    assert service.controller.primary.rollout_state == "COMPLETED"
    assert len(service.controller.deployments) == 1


def test_broken_revision_fails_rolls_back_and_loses_nothing(service_factory) -> None:
    service = service_factory(desired=2)
    controller = service.controller
    assert controller.wait_steady(30)
    first = controller.primary.id
    healthy_counts: list[int] = []
    with Load(service.lb.url) as load:
        controller.update(revision=revision(2, FAKE_CRASH="no database"))
        failed = controller.primary
        deadline = time.monotonic() + 90
        while (not controller.steady() or controller.primary is failed) and (
            time.monotonic() < deadline
        ):
            healthy_counts.append(len(service.lb.healthy_targets()))
            time.sleep(0.05)
    assert failed.rollout_state == "FAILED", failed
    assert failed.failed_tasks >= 3
    assert controller.primary.revision.short == "svc:1"
    assert controller.primary.rollout_state == "COMPLETED"
    messages = controller.events.messages()
    assert f"(service svc) (deployment {failed.id}) deployment failed: tasks failed to start." in (
        messages
    )
    assert f"(service svc) rolling back to deployment {first}." in messages
    assert min(healthy_counts) >= 1  # minimumHealthyPercent 50 of 2
    assert load.failures == [] and len(load.statuses) > 5
    crashed = [t for t in service.tasks("STOPPED") if t.stop_code == "EssentialContainerExited"]
    assert len(crashed) >= 3 and {t.revision.short for t in crashed} == {"svc:2"}
    assert {t.stopped_reason for t in crashed} == {"Essential container in task exited"}


def test_task_over_its_memory_is_stopped_out_of_memory(service_factory) -> None:
    service = service_factory(desired=1, first=revision(1, memory=5))
    assert wait_for(lambda: bool(service.tasks("STOPPED")))
    task = service.tasks("STOPPED")[-1]
    assert task.stopped_reason == "OutOfMemoryError: Container killed due to memory usage"
    assert task.exit_code == 137


SERVE_FAKE = (
    "import os, uvicorn; uvicorn.run('fake_service:create_app', factory=True, "
    "host=os.environ['HOST'], port=int(os.environ['PORT']), log_level='warning')"
)


def test_revision_command_runs_instead_of_the_default(service_factory) -> None:
    service = service_factory(desired=1)
    assert service.controller.wait_steady(30)
    service.controller.update(
        revision=revision(2, command=["python", "-c", SERVE_FAKE], FAKE_COLOUR="blue")
    )
    assert wait_for(lambda: service.controller.steady(), 60)
    (task,) = service.tasks("RUNNING")
    assert task.revision.command == ["python", "-c", SERVE_FAKE]
    assert httpx.get(service.lb.url + "/env/FAKE_COLOUR").json()["value"] == "blue"
    assert httpx.get(service.lb.url + "/env/PORT").json()["value"] == task.url.rsplit(":", 1)[1]


def test_revision_failing_elb_health_checks_is_stopped_after_grace_and_rolled_back(
    service_factory,
) -> None:
    service = service_factory(desired=2, grace_period_s=20.0)  # 1 s at K=20
    controller = service.controller
    assert controller.wait_steady(30)
    with Load(service.lb.url) as load:
        controller.update(revision=revision(2, FAKE_HEALTH_STATUS="503"))
        failed = controller.primary
        assert wait_for(lambda: controller.primary is not failed and controller.steady(), 120)
    assert failed.rollout_state == "FAILED"
    reason = "Task failed ELB health checks in (target-group target-group)"
    sick = [t for t in service.tasks("STOPPED") if t.revision.short == "svc:2"]
    assert sum(t.stopped_reason == reason for t in sick) >= 3, [t.stopped_reason for t in sick]
    assert all(t.started_at for t in sick)  # they ran: the checks, not the start, failed
    assert controller.primary.revision.short == "svc:1"
    assert load.failures == []
