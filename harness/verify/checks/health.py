"""Item 4: /health through the gateway, and every task running and healthy behind the load balancer."""

from __future__ import annotations

from typing import Any

import httpx

from harness.verify.model import Evidence, ItemResult, Table, bi, verdict
from harness.verify.target import Options, Target, replicas_now

HEALTHY_STATES = ("healthy", "running")


def check_health(target: Target, options: Options) -> ItemResult:
    """GET /health on the gateway; on the local stack each task's own /health and state too."""
    evidence = Evidence()
    response = httpx.get(f"{target.gateway_url}/health", timeout=10.0)
    evidence.fact("GET /health through the gateway", "經由 Gateway 的 GET /health",
                  f"{response.status_code} {response.text[:120]}")
    if response.status_code != 200:
        evidence.failures.append(f"gateway /health answered {response.status_code}: {response.text[:200]}")
    rows: list[list[str]] = []
    if target.local:
        tasks = replicas_now(target)
        lb_view = _load_balancer_view(target)
        if not tasks:
            evidence.failures.append("no service task is known to the stack")
        for task in tasks:
            try:
                own = str(httpx.get(f"{task['url']}/health", timeout=5.0).status_code)
            except httpx.HTTPError as exc:
                own = f"unreachable ({type(exc).__name__})"
            lb = lb_view.get(task["url"], "-")
            ok = own == "200" and str(task["state"]).lower() in HEALTHY_STATES and lb in ("-", "healthy")
            rows.append([str(task["id"]), task["url"], str(task["state"]), own, lb, "ok" if ok else "FAIL"])
            if not ok:
                evidence.failures.append(
                    f"task {task['id']} ({task['url']}): state {task['state']}, /health {own}, "
                    f"load balancer {lb}")
        evidence.tables.append(Table(bi("Service tasks", "服務任務"),
                                     ["task", "url", "state", "/health", "load balancer", "verdict"], rows))
        evidence.fact("tasks", "任務數", len(tasks))
    else:
        evidence.fact("tasks", "任務數", "not visible from outside the VPC / VPC 外不可見")
    return verdict(
        not evidence.failures,
        bi(f"/health is 200 through the gateway; {len(rows)} task(s) running and healthy."
           if target.local else "/health is 200 through the gateway (tasks are not visible from here).",
           f"經由 Gateway 的 /health 回 200；{len(rows)} 個任務運作中且健康。"
           if target.local else "經由 Gateway 的 /health 回 200（此處看不到各任務）。"),
        bi(f"{len(evidence.failures)} problem(s): {evidence.failures[0] if evidence.failures else '-'}",
           f"發現 {len(evidence.failures)} 個問題：{evidence.failures[0] if evidence.failures else '-'}"),
        evidence,
        "4",
    )


def _load_balancer_view(target: Target) -> dict[str, Any]:
    """target URL -> the load balancer's health of it, when this run holds the load balancer."""
    balancer = getattr(target.stack, "load_balancer", None)
    view = getattr(balancer, "target_health", None)
    return dict(view()) if callable(view) else {}
