"""ECS 任務無法啟動 — ECS tasks fail to start: the service, its stopped tasks, its image."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status
from harness.doctor.registry import check, finding

#: stoppedReason prefixes ECS writes for stops it made on purpose (scale-in, deployments)
DELIBERATE = ("Scaling activity initiated by",)
#: (text in stoppedReason / stopCode / container reason, what it means, the next step)
CAUSES = (
    ("OutOfMemory", "out of memory", "raise the task definition's memory or find what grows"),
    (
        "CannotPullContainerError",
        "image pull failed",
        "push the image to ECR and check the execution role's ecr: permissions",
    ),
    (
        "ResourceInitializationError",
        "could not start (secrets, logs or image)",
        "check the execution role and the VPC endpoints",
    ),
    (
        "ELB health checks",
        "failed load balancer health checks",
        "read the task's log in the awslogs group; is /health answering on the container port?",
    ),
    (
        "Essential container in task exited",
        "the container exited",
        "read the task's log stream in the awslogs group",
    ),
)


def _names(ctx: Context) -> tuple[str, str]:
    return ctx.infra.cluster_name, str(ctx.infra.service_definition["serviceName"])


def _service(ctx: Context) -> dict[str, Any] | None:
    cluster, name = _names(ctx)
    found = ctx.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
    return next((s for s in found if s.get("status") == "ACTIVE"), None)


@check("service.steady", "ECS service running its desired count")
def steady(ctx: Context) -> list[Finding]:
    cluster, name = _names(ctx)
    title = f"ECS service {name} in {cluster}"
    service = _service(ctx)
    if service is None:
        return finding(
            "service.steady",
            title,
            Status.FAIL,
            ["no ACTIVE service"],
            "create it (scripts/deploy-ecs.sh or terraform apply)",
        )
    desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
    pending = int(service.get("pendingCount", 0))
    primary: dict[str, Any] = next(
        (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {}
    )
    rollout = primary.get("rolloutState", "?")
    evidence = [
        f"running {running}, pending {pending}, desired {desired}; task definition "
        f"{str(service.get('taskDefinition', '?')).rsplit('/', 1)[-1]}; primary deployment {rollout}"
    ]
    if primary.get("rolloutStateReason"):
        evidence.append(f"rollout: {primary['rolloutStateReason']}")
    events = service.get("events") or []
    if events:
        evidence.append(f"latest event: {events[0].get('message', '')}")
    scale = f"aws ecs update-service --cluster {cluster} --service {name} --desired-count <n>"
    if desired == 0:
        return finding(
            "service.steady",
            title,
            Status.FAIL,
            evidence + ["desired count is 0: nothing can serve"],
            scale,
        )
    if rollout == "FAILED":
        return finding(
            "service.steady",
            title,
            Status.FAIL,
            evidence,
            "the last deployment failed: see service.stopped_tasks for why its tasks stopped",
        )
    if running < desired:
        status = Status.WARN if rollout == "IN_PROGRESS" else Status.FAIL
        return finding(
            "service.steady",
            title,
            status,
            evidence,
            "tasks are not reaching RUNNING: see service.stopped_tasks and the awslogs group",
        )
    since = datetime.fromtimestamp(ctx.since_ms / 1000, UTC)
    failed = [
        e
        for e in events
        if "deployment failed" in str(e.get("message", "")) and _when(e.get("createdAt")) >= since
    ]
    if failed:  # steady again, on the revision the circuit breaker rolled back to
        return finding(
            "service.steady",
            title,
            Status.WARN,
            evidence + [f"rolled back: {failed[0].get('message', '')}"],
            "a deployment failed and was rolled back: see service.stopped_tasks for why",
        )
    return finding("service.steady", title, Status.PASS, evidence)


def _cause(task: dict[str, Any]) -> tuple[str, str]:
    text = " ".join(
        [str(task.get("stoppedReason", "")), str(task.get("stopCode", ""))]
        + [str(c.get("reason", "")) for c in task.get("containers", [])]
    )
    for needle, meaning, step in CAUSES:
        if needle in text:
            return meaning, step
    return "stopped", "read the task's log stream in the awslogs group"


@check("service.stopped_tasks", "Why tasks stopped")
def stopped_tasks(ctx: Context) -> list[Finding]:
    cluster, name = _names(ctx)
    title = f"tasks of {name} stopped in the last {ctx.window_s / 60:.0f} min"
    ecs = ctx.client("ecs")
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="STOPPED").get(
        "taskArns", []
    )
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]
    since = datetime.fromtimestamp(ctx.since_ms / 1000, UTC)
    recent = [t for t in tasks if _when(t.get("stoppedAt")) >= since]
    unexpected = [
        t
        for t in recent
        if not str(t.get("stoppedReason", "")).startswith(DELIBERATE)
        and t.get("stopCode") != "UserInitiated"  # StopTask: an operator's choice
    ]
    if not unexpected:
        return finding(
            "service.stopped_tasks",
            title,
            Status.PASS,
            [f"{len(recent)} stopped, none unexpectedly"],
        )
    evidence, steps = [], []
    for task in unexpected[:5]:
        meaning, step = _cause(task)
        revision = str(task.get("taskDefinitionArn", "?")).rsplit("/", 1)[-1]
        evidence.append(
            f"task {str(task['taskArn']).rsplit('/', 1)[-1]} ({revision}): {meaning}: {task.get('stoppedReason', '')}"
        )
        if step not in steps:
            steps.append(step)
    return finding(
        "service.stopped_tasks",
        title,
        Status.FAIL,
        [f"{len(unexpected)} of {len(recent)} stopped unexpectedly"] + evidence,
        "; ".join(steps),
    )


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


@check("service.image", "The task definition's image exists")
def image(ctx: Context) -> list[Finding]:
    service = _service(ctx)
    wanted = str(service["taskDefinition"]) if service else str(ctx.infra.task_definition["family"])
    title = "image of the running task definition"
    try:
        task = ctx.client("ecs").describe_task_definition(taskDefinition=wanted)["taskDefinition"]
    except ClientError as exc:
        return finding(
            "service.image",
            title,
            Status.FAIL,
            [f"{wanted}: {exc.response['Error']['Message']}"],
            "register the task definition (scripts/deploy-ecs.sh)",
        )
    container = task["containerDefinitions"][0]
    image_name = str(container["image"])
    revision = f"{task['family']}:{task['revision']}"
    if ctx.local:
        module = "service.app"
        if importlib.util.find_spec(module) is None:
            return finding(
                "service.image",
                title,
                Status.FAIL,
                [f"{revision}: local replicas run {module}, which cannot be imported"],
                "install the project (make install) in the stack's Python",
            )
        return finding(
            "service.image",
            title,
            Status.PASS,
            [f"{revision} ({image_name}): local replicas run the importable {module}"],
        )
    if ".dkr.ecr." not in image_name:
        return finding(
            "service.image",
            title,
            Status.WARN,
            [f"{revision}: {image_name} is not in ECR"],
            "doctor checks ECR images only",
        )
    repository, _, tag = image_name.split("/", 1)[1].partition(":")
    try:
        ctx.client("ecr").describe_images(
            repositoryName=repository, imageIds=[{"imageTag": tag or "latest"}]
        )
    except ClientError as exc:
        return finding(
            "service.image",
            title,
            Status.FAIL,
            [f"{image_name}: {exc.response['Error']['Code']}"],
            "build and push the image (scripts/deploy-ecs.sh)",
        )
    return finding("service.image", title, Status.PASS, [f"{revision}: {image_name} is in ECR"])
