"""Whether a running stack can serve: every component probed, and the read path end to end.

``/health`` on the service (and ``/v1/health`` through the gateway) stays a liveness check, as the
ALB and the ECS health check use it: AWS's guidance is that a target's health check should not
fail because a shared dependency is down, or the load balancer takes every task out at once. So
readiness is not a route: it is what ``status`` and ``up`` check here, the AWS endpoint, each event
source mapping, each replica, the gateway, and one real query through the gateway (which reaches
a replica, the query Lambda and DynamoDB). Anything but a 200 there means the stack is not ready.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: answers `/query/user` with an empty list when all is well; never a seeded user
PROBE_USER = "query-harness-status-probe"


@dataclass(frozen=True)
class Check:
    """One probe: what was asked, and whether the answer means it works."""

    component: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "ok": self.ok, "detail": self.detail}


def _http(component: str, method: str, url: str, timeout_s: float, **kwargs: Any) -> Check:
    import httpx

    try:
        answer = httpx.request(method, url, timeout=timeout_s, **kwargs)
    except httpx.HTTPError as exc:
        return Check(component, False, f"unreachable ({type(exc).__name__}) at {url}")
    detail = str(answer.status_code)
    if answer.status_code != 200:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and (body.get("code") or body.get("message")):
            detail += f" {body.get('code') or ''} {body.get('message') or ''}".rstrip()
    return Check(component, answer.status_code == 200, detail)


def _mappings(edge_url: str, region: str) -> list[Check]:
    """Each event source mapping's State (AWS: Enabled when it polls) and last result."""
    from botocore.exceptions import BotoCoreError, ClientError

    from harness.stack.provision import aws_client

    try:
        client = aws_client("lambda", edge_url, region)
        mappings = client.list_event_source_mappings()["EventSourceMappings"]
    except (BotoCoreError, ClientError) as exc:
        return [Check("event source mappings", False, f"cannot be listed: {exc}")]
    if not mappings:
        return [Check("event source mappings", False, "none: nothing syncs the read side")]
    checks = []
    for mapping in mappings:
        name = f"mapping → {mapping.get('FunctionArn', '?').rsplit(':', 1)[-1]}"
        state = str(mapping.get("State"))
        result = str(mapping.get("LastProcessingResult", ""))
        detail = state + (f" (last: {result})" if result else "")
        checks.append(Check(name, state == "Enabled", detail))
    return checks


def probe(state: dict[str, Any], timeout_s: float = 3.0) -> list[Check]:
    """Probe every component of the stack described by ``state`` (its ``state.json``)."""
    edge = str(state["edge_url"])
    checks = [_http("AWS endpoint", "GET", f"{edge}/_localstack/health", timeout_s)]
    if checks[0].ok:
        checks += _mappings(edge, str(state.get("region", "ap-southeast-1")))
    replicas = state.get("replicas", [])
    if not replicas:
        checks.append(Check("replicas", False, "none running: nothing can serve"))
    for replica in replicas:
        checks.append(
            _http(f"replica {replica['id']}", "GET", f"{replica['url']}/health", timeout_s)
        )
    gateway = str(state["gateway_url"])
    checks.append(_http("gateway /health (liveness)", "GET", f"{gateway}/health", timeout_s))
    checks.append(read_path(gateway, timeout_s * 3))
    return checks


def read_path(gateway_url: str, timeout_s: float = 10.0) -> Check:
    """One query through the gateway: a 200 needs a replica, the query Lambda and DynamoDB."""
    return _http(
        "read path (gateway → replica → query-lambda → DynamoDB)",
        "POST",
        f"{gateway_url}/query/user",
        timeout_s,
        content=json.dumps({"user_id": PROBE_USER}),
        headers={"content-type": "application/json", "x-request-id": "query-harness-status"},
    )


def not_ready(checks: list[Check]) -> list[Check]:
    """The checks that failed."""
    return [check for check in checks if not check.ok]


def function_start_errors(lambda_client: Any, names: list[str]) -> list[str]:
    """Invoke each function once and report those whose code cannot load.

    AWS reports an init failure as a function error whose ``errorType`` starts with ``Runtime.``
    (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``...); any other answer, even an
    error about the empty test event, means the code loaded.
    """
    problems = []
    for name in names:
        answer = lambda_client.invoke(FunctionName=name, Payload=b"{}")
        if not answer.get("FunctionError"):
            continue
        try:
            error = json.loads(answer["Payload"].read() or b"{}")
        except ValueError:
            continue
        kind = str(error.get("errorType", "")) if isinstance(error, dict) else ""
        if kind.startswith("Runtime."):
            problems.append(f"{name}: {kind}: {error.get('errorMessage', '')}".strip())
    return problems


def function_log_errors(logs_client: Any, name: str, since_ms: int, limit: int = 3) -> list[str]:
    """The last ERROR-looking lines ``name`` wrote to ``/aws/lambda/<name>`` since ``since_ms``."""
    try:
        events = logs_client.filter_log_events(
            logGroupName=f"/aws/lambda/{name}", startTime=since_ms
        ).get("events", [])
    except Exception:  # noqa: BLE001 - only adds detail to an error being reported
        return []
    lines = [str(e.get("message", "")).strip() for e in events]
    return [line for line in lines if "ERROR" in line or "Error" in line][-limit:]
