"""Items 6 and 7: availability through a task kill and a rolling deployment; autoscaling on a ramp.

Both act through the AWS APIs the ECS control plane makes true (issue 12): ``ecs list-tasks /
stop-task / update-service / describe-services`` (deployments and ``rolloutState``), CloudWatch
``get-metric-statistics`` on ``AWS/ECS CPUUtilization``, and Application Auto Scaling's scalable
targets and ``describe-scaling-activities``. Where those APIs do not yet reflect the running
service, the item is NOT CHECKED with the reason, never PASS.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.verify import charts
from harness.verify.load import Sample, start_load
from harness.verify.model import Evidence, ItemResult, Picture, Table, bi, not_checked, verdict
from harness.verify.target import Options, Target, replicas_now, time_scale

AVAILABILITY_TARGET = 0.999
#: item 7's ramp rises to this multiple of --rate: the CPU metric must cross the policy's target
#: however cheap a request has become
RAMP_PEAK = 6
PENDING = "the ECS control plane"


def service_names(root: Path) -> tuple[str, str]:
    """(cluster, service) from infra/ecs/service-definition.json."""
    definition = json.loads((root / "infra" / "ecs" / "service-definition.json").read_text("utf-8"))
    return str(definition.get("cluster", "default")).split("/")[-1], str(definition["serviceName"])


def running_tasks(target: Target, cluster: str, service: str) -> list[str]:
    """The service's RUNNING task ARNs as the ECS API reports them."""
    ecs = target.client("ecs")
    return list(ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"])


def ecs_gap(target: Target, options: Options) -> str | None:
    """Why the ECS API cannot be used on the running service yet, or None when it can."""
    cluster, service = service_names(options.root)
    try:
        tasks = running_tasks(target, cluster, service)
    except (ClientError, BotoCoreError) as exc:
        return f"ecs list-tasks on {cluster}/{service} failed: {exc}"
    replicas = [r for r in replicas_now(target) if str(r["state"]).lower() == "healthy"]
    if len(tasks) != len(replicas):
        return (f"ecs list-tasks reports {len(tasks)} RUNNING task(s) of {cluster}/{service} while "
                f"{len(replicas)} replica(s) serve: the ECS API does not drive the replicas yet "
                f"({PENDING}), so stop-task and update-service would not act on what serves")
    return None


def check_availability(target: Target, options: Options) -> ItemResult:
    """Load; stop one task through ECS; force a new deployment; every request counted."""
    gap = ecs_gap(target, options)
    if gap is not None:
        return not_checked("6", bi(f"Not checked yet: {gap}.", f"尚無法檢查：{gap}。"),
                           Evidence(failures=[gap]))
    cluster, service = service_names(options.root)
    ecs = target.client("ecs")
    evidence = Evidence()
    duration = max(options.duration_s, 30.0)
    with tempfile.TemporaryDirectory(prefix="verify-availability-") as tmp:
        load = start_load(target.gateway_url, options.rate, duration, Path(tmp))
        time.sleep(duration / 4)
        victim = running_tasks(target, cluster, service)[0]
        ecs.stop_task(cluster=cluster, task=victim, reason="verify: item 6 kills one task")
        evidence.fact("task stopped at", "終止任務時間", f"{time.monotonic() - load.started:.1f} s: {victim}")
        time.sleep(duration / 4)
        ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        evidence.fact("deployment started at", "開始部署時間", f"{time.monotonic() - load.started:.1f} s")
        samples = load.wait(duration + 120)
    rollout = _wait_rollout(ecs, cluster, service, timeout_s=duration * 2)
    described = ecs.describe_tasks(cluster=cluster, tasks=[victim])["tasks"]
    stopped = (f"{described[0].get('lastStatus')}: {described[0].get('stoppedReason')}"
               if described else "unknown")
    evidence.fact("running tasks after the deployment", "部署後運行中的任務",
                  ", ".join(t.rsplit("/", 1)[-1][:12] for t in running_tasks(target, cluster, service)))
    return judge_availability(samples, rollout, victim, stopped, evidence)


def judge_availability(
    samples: list[Sample], rollout: str, victim: str, stopped: str, evidence: Evidence | None = None
) -> ItemResult:
    """The verdict on a run's requests (a 5xx or a connection error is a failure; 4xx is an
    answer), the rollout's final state and the killed task's state: every failure is listed with
    its time, route, status and error."""
    evidence = evidence or Evidence()
    evidence.fact("deployment", "部署", rollout)
    evidence.fact("stopped task afterwards", "被終止任務之後狀態", stopped)
    if not stopped.startswith("STOPPED"):
        evidence.failures.append(f"the task {victim} was not stopped by ecs stop-task ({stopped})")
    if not rollout.startswith("COMPLETED"):
        evidence.failures.append(f"the rolling deployment did not complete: {rollout}")
    ok = [s for s in samples if s.error is None or (s.status and s.status < 500)]
    rate = len(ok) / len(samples) if samples else 0.0
    evidence.fact("requests", "請求數", len(samples))
    evidence.fact("success rate", "成功率", f"{rate:.4%} (target ≥ {AVAILABILITY_TARGET:.1%})")
    failed = [s for s in samples if s not in ok]
    if not samples:
        evidence.failures.append("the load run recorded no request")
    elif rate < AVAILABILITY_TARGET:
        evidence.failures.insert(0, f"{len(failed)} of {len(samples)} requests failed: success rate "
                                    f"{rate:.3%} < {AVAILABILITY_TARGET:.1%}")
    evidence.failures.extend(f"t={s.t:.2f}s {s.route} status {s.status} {s.error} "
                             f"(request id {s.request_id})" for s in failed[:200])
    if len(failed) > 200:
        evidence.failures.append(f"… and {len(failed) - 200} more failed requests")
    evidence.pictures.append(Picture(bi("Requests per second and failures", "每秒請求數與失敗數"),
                                     charts.timeline(_per_second(samples), "requests/s")))
    passed = bool(samples) and rate >= AVAILABILITY_TARGET and rollout.startswith("COMPLETED") and (
        stopped.startswith("STOPPED"))
    return verdict(
        passed,
        bi(f"{rate:.3%} of {len(samples)} requests succeeded through a task kill and a rolling deployment.",
           f"終止任務與滾動部署期間 {len(samples)} 個請求成功率 {rate:.3%}。"),
        bi(f"{len(failed)} of {len(samples)} requests failed (success rate {rate:.3%}, target ≥ 99.9 %); "
           f"deployment {rollout}.",
           f"{len(samples)} 個請求中 {len(failed)} 個失敗（成功率 {rate:.3%}，目標 ≥ 99.9 %）；部署 {rollout}。"),
        evidence,
        "6",
    )


def check_autoscaling(target: Target, options: Options) -> ItemResult:
    """A load ramp: desired and running tasks rise with the CPU metric, then fall back."""
    cluster, service = service_names(options.root)
    resource = f"service/{cluster}/{service}"
    gap = ecs_gap(target, options)
    if gap is not None:
        return not_checked("7", bi(f"Not checked yet: {gap}.", f"尚無法檢查：{gap}。"),
                           Evidence(failures=[gap]))
    evidence = Evidence()
    aas = target.client("application-autoscaling")
    period = max(1, round(60 / time_scale(target)))
    try:
        scalable = aas.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[resource])["ScalableTargets"]
        policies = [p for p in aas.describe_scaling_policies(
            ServiceNamespace="ecs", ResourceId=resource)["ScalingPolicies"]
            if "TargetTrackingScalingPolicyConfiguration" in p]
        deadline = time.monotonic() + 3 * period + 5  # the first period may not have ended yet
        while scalable and not _cpu(target, cluster, service, period) and time.monotonic() < deadline:
            time.sleep(1.0)
    except (ClientError, BotoCoreError) as exc:
        reason = f"the autoscaling or CloudWatch API failed: {exc}"
        return not_checked("7", bi(f"Not checked yet: {reason}.", f"尚無法檢查：{reason}。"))
    if not scalable:
        evidence.failures.append(f"no scalable target {resource} is registered with Application Auto "
                                 "Scaling: nothing may change the service's desired count")
    if not policies:
        evidence.failures.append(f"no target-tracking scaling policy on {resource}: no alarm asks "
                                 "for a scale-out or a scale-in")
    ecs = target.client("ecs")
    if scalable:
        low, high = int(scalable[0]["MinCapacity"]), int(scalable[0]["MaxCapacity"])
    else:
        low = high = int(ecs.describe_services(cluster=cluster, services=[service])["services"][0][
            "desiredCount"])
    goal = policies[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] if policies else None
    series: dict[str, list[tuple[float, float]]] = {"desired": [], "running": [], "CPU %": []}
    began = time.monotonic()
    ramp_started = datetime.now(UTC)
    newest = datetime.min.replace(tzinfo=UTC)  # the newest CPU datapoint seen during the ramp
    deadline = began + options.duration_s * 4
    peak = low
    with tempfile.TemporaryDirectory(prefix="verify-ramp-") as tmp:
        load = start_load(target.gateway_url, options.rate * RAMP_PEAK, options.duration_s, Path(tmp),
                          ramp_s=options.duration_s / 2)
        while time.monotonic() < deadline:
            described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
            now = time.monotonic() - began
            series["desired"].append((now, described["desiredCount"]))
            series["running"].append((now, described["runningCount"]))
            cpu = _cpu(target, cluster, service, period)
            if cpu:
                series["CPU %"].append((now, cpu[-1][1]))
                newest = max(newest, cpu[-1][0])
            peak = max(peak, int(described["desiredCount"]))
            if load.process.poll() is not None and (peak == low or described["desiredCount"] == low):
                break  # the load is over: back in, or it never scaled out
            time.sleep(2.0)
        samples: list[Sample] = load.wait(options.duration_s * 4)
    offset = load.started - began  # samples count from the load's start
    series["offered requests/s"] = [(t + offset, n) for t, n in _per_second(samples)["requests/s"]]
    evidence.fact("offered load", "施加負載",
                  f"rising to {options.rate * RAMP_PEAK:g} requests/s over {options.duration_s / 2:g} s, "
                  f"then held until {options.duration_s:g} s")
    activities = aas.describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
    evidence.tables.append(Table(bi("Scaling activities", "擴展活動"), ["time", "status", "cause"], [
        [_when(a.get("StartTime")), a.get("StatusCode", ""), a.get("Cause", "")] for a in activities[:20]]))
    cpu_peak = max((v for _, v in series["CPU %"]), default=0.0)
    evidence.fact("CPU target (Terraform policy) / peak measured", "CPU 目標（Terraform 政策）／實測最高",
                  f"{goal} % / {cpu_peak:.0f} %")
    evidence.fact("time scale", "時間縮放", f"K={time_scale(target):g}: a {period} s metric period")
    if newest < ramp_started - timedelta(seconds=period):
        seen = "none" if newest.year == 1 else newest.isoformat(timespec="seconds")
        evidence.failures.append(
            f"AWS/ECS CPUUtilization for {cluster}/{service} was not published during the ramp "
            f"(newest datapoint: {seen}): the policy's metric has no data to act on")
    if peak == low:
        evidence.failures.append(
            f"desiredCount stayed {low}: CPU peaked at {cpu_peak:.0f} % against the policy's target "
            f"{goal} % ({len(samples)} requests offered in {options.duration_s:g} s)")
    elif series["desired"] and series["desired"][-1][1] != low:
        evidence.failures.append(f"scaled out to {peak} but not back in to {low} before the deadline")
    evidence.fact("min / max capacity", "最小／最大容量", f"{low} / {high}")
    evidence.fact("peak desired count", "最高期望任務數", peak)
    evidence.fact("requests offered", "施加請求數", len(samples))
    evidence.pictures.append(Picture(
        bi("Offered load, CPU metric, desired and running tasks", "施加負載、CPU 指標、期望與運行任務數"),
        charts.timeline(series, "CPU % / requests per s", right=("desired", "running"),
                        right_label="tasks")))
    back_in = bool(series["desired"]) and series["desired"][-1][1] == low
    cause = evidence.failures[0] if evidence.failures else ""
    return verdict(
        peak > low and back_in and not evidence.failures,
        bi(f"scaled out to {peak} tasks under load and back in to {low}.",
           f"負載下擴展至 {peak} 個任務，負載後縮減回 {low} 個。"),
        bi(f"did not scale out and back in (peak {peak}, min {low}, back in: {'yes' if back_in else 'no'}): "
           f"{cause}",
           f"未完成擴展與縮減（最高 {peak}，最小 {low}，已縮減：{'是' if back_in else '否'}）：{cause}"),
        evidence,
        "7",
    )


def _cpu(target: Target, cluster: str, service: str, period: int) -> list[tuple[datetime, float]]:
    """AWS/ECS CPUUtilization (time, average) of the last ten periods (a period: 60 s / K)."""
    now = datetime.now(UTC)
    answer = target.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/ECS", MetricName="CPUUtilization",
        Dimensions=[{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
        StartTime=now - timedelta(seconds=10 * period), EndTime=now + timedelta(seconds=1),
        Period=period, Statistics=["Average"])
    points = sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    return [(p["Timestamp"], float(p["Average"])) for p in points]


def _when(value: object) -> str:
    """A scaling activity's time as ``HH:MM:SS UTC``."""
    return value.astimezone(UTC).strftime("%H:%M:%S UTC") if isinstance(value, datetime) else str(value or "")


def _wait_rollout(ecs: Any, cluster: str, service: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = "unknown"
    while time.monotonic() < deadline:
        deployments = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"]
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        state = f"{primary.get('rolloutState', 'unknown')} ({len(deployments)} deployment(s))"
        if len(deployments) == 1 and primary.get("rolloutState") == "COMPLETED":
            return state
        time.sleep(1.0)
    return state


def _per_second(samples: list[Sample]) -> dict[str, list[tuple[float, float]]]:
    total: dict[int, int] = {}
    failed: dict[int, int] = {}
    for s in samples:
        total[int(s.t)] = total.get(int(s.t), 0) + 1
        if s.error is not None and (not s.status or s.status >= 500):
            failed[int(s.t)] = failed.get(int(s.t), 0) + 1
    seconds = sorted(total)
    return {"requests/s": [(float(t), float(total[t])) for t in seconds],
            "failures/s": [(float(t), float(failed.get(t, 0))) for t in seconds]}
