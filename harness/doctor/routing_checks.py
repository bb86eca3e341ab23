"""API Gateway 502 錯誤 — the API answers 502: target health, the API and its policy, the VPC link,
the security groups between them."""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.exceptions import ClientError

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status
from harness.doctor.registry import check, finding

VPC_KEYS = ("aws:sourcevpc", "aws:sourcevpce")


def _target_group_name(ctx: Context) -> str:
    arn = str(ctx.infra.service_definition.get("loadBalancers", [{}])[0].get("targetGroupArn", ""))
    return arn.split("targetgroup/", 1)[-1].split("/", 1)[0] if "targetgroup/" in arn else ""


@check("routing.targets", "Load balancer target health")
def targets(ctx: Context) -> list[Finding]:
    name = _target_group_name(ctx)
    title = f"targets of {name or 'the target group'}"
    elbv2 = ctx.client("elbv2")
    try:
        group = elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]
    except (ClientError, IndexError) as exc:
        if ctx.local:
            return _local_targets(ctx, title)
        return finding(
            "routing.targets",
            title,
            Status.FAIL,
            [f"target group {name}: {exc}"],
            "create the target group (terraform apply)",
        )
    health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])[
        "TargetHealthDescriptions"
    ]
    evidence = [
        f"{t['Target']['Id']}:{t['Target'].get('Port')} {t['TargetHealth']['State']}"
        + (
            f" ({t['TargetHealth'].get('Reason')}: {t['TargetHealth'].get('Description')})"
            if t["TargetHealth"].get("Reason")
            else ""
        )
        for t in health
    ]
    return _verdict(
        title,
        evidence,
        sum(t["TargetHealth"]["State"] == "healthy" for t in health),
        len(health),
        group.get("HealthCheckPath", "/health"),
    )


def _local_targets(ctx: Context, title: str) -> list[Finding]:
    """The harness's load balancer has no ELBv2 twin: ask each replica's health check as it does."""
    path = ctx.infra.health_check.path
    replicas = list((ctx.state or {}).get("replicas", []))
    evidence, healthy = [], 0
    for replica in replicas:
        url = str(replica.get("url", ""))
        try:
            status = httpx.get(url + path, timeout=ctx.infra.health_check.timeout_s).status_code
            state = (
                "healthy" if status == 200 else f"unhealthy (Target.ResponseCodeMismatch: {status})"
            )
        except httpx.HTTPError as exc:
            state = f"unhealthy (Target.FailedHealthChecks: {type(exc).__name__})"
        healthy += state == "healthy"
        evidence.append(f"{replica.get('id', url)} {url}: {state}")
    return _verdict(title + " (local load balancer)", evidence, healthy, len(replicas), path)


def _verdict(title: str, evidence: list[str], healthy: int, total: int, path: str) -> list[Finding]:
    summary = [f"{healthy} of {total} targets healthy"] + evidence
    step = (
        "no healthy target: the load balancer answers 502/503; "
        f"check the tasks (service.*) and that {path} answers 200"
    )
    if total == 0 or healthy == 0:
        return finding("routing.targets", title, Status.FAIL, summary, step)
    if healthy < total:
        return finding(
            "routing.targets",
            title,
            Status.WARN,
            summary,
            f"unhealthy targets get no traffic: check {path} on them",
        )
    return finding("routing.targets", title, Status.PASS, summary)


def _policy(api: dict[str, Any]) -> dict[str, Any] | None:
    text = api.get("policy")
    if not text:
        return None
    try:
        parsed = json.loads(str(text).replace('\\"', '"'))
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _limits_to_vpc(policy: dict[str, Any]) -> bool:
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        conditions = statement.get("Condition", {})
        keys = {
            k.lower() for block in conditions.values() if isinstance(block, dict) for k in block
        }
        if keys & set(VPC_KEYS):
            return True
    return False


def _rest_api(ctx: Context) -> tuple[str, dict[str, Any] | None]:
    """The API ``infra/`` names (its title), as the account has it, or None."""
    name = str(ctx.infra.api_document.get("info", {}).get("title", ""))
    apis = ctx.client("apigateway").get_rest_apis(limit=500)["items"]
    return name, next((a for a in apis if a.get("name") == name), None)


@check("routing.api", "The private REST API, its stage and its resource policy")
def api(ctx: Context) -> list[Finding]:
    title_name, found = _rest_api(ctx)
    title = f"REST API {title_name}"
    apigw = ctx.client("apigateway")
    if found is None:
        return finding(
            "routing.api", title, Status.FAIL, ["no such API"], "import it (terraform apply)"
        )
    evidence, problems = [f"id {found['id']}"], []
    types = (found.get("endpointConfiguration") or {}).get("types", [])
    evidence.append(f"endpoint type {','.join(types) or '?'}")
    if "PRIVATE" not in types:
        problems.append("the API is not PRIVATE: it is reachable from outside the VPC")
    policy = _policy(found)
    if policy is None:
        problems.append("no resource policy: a private API without one refuses every call")
    elif not _limits_to_vpc(policy):
        problems.append("the resource policy has no aws:SourceVpc / aws:SourceVpce condition")
    else:
        evidence.append("resource policy limits callers to the VPC")
    try:
        stage = apigw.get_stage(restApiId=found["id"], stageName=ctx.infra.api_stage)
        evidence.append(f"stage {ctx.infra.api_stage} on deployment {stage.get('deploymentId')}")
    except ClientError:
        problems.append(
            f"no stage {ctx.infra.api_stage}: every call is 403 Missing Authentication Token"
        )
    if problems:
        return finding(
            "routing.api",
            title,
            Status.FAIL,
            evidence + problems,
            "re-apply infra/terraform/api-gateway.tf (endpoint type, policy, stage)",
        )
    return finding("routing.api", title, Status.PASS, evidence)


@check("routing.vpc_link", "The VPC link from the API to the load balancer")
def vpc_link(ctx: Context) -> list[Finding]:
    title = "VPC link"
    if ctx.local:
        return finding(
            "routing.vpc_link",
            title,
            Status.NA,
            [
                "local stack: the gateway forwards to the load balancer directly; there is no VPC link"
            ],
        )
    apigw = ctx.client("apigateway")
    _, found = _rest_api(ctx)
    variables = (
        apigw.get_stage(restApiId=found["id"], stageName=ctx.infra.api_stage).get("variables", {})
        if found
        else {}
    )
    link_id = variables.get("vpcLinkId")
    if not link_id:
        return finding(
            "routing.vpc_link",
            title,
            Status.FAIL,
            ["the stage has no vpcLinkId variable"],
            "set the stage variable vpcLinkId (infra/terraform/api-gateway.tf)",
        )
    link = apigw.get_vpc_link(vpcLinkId=link_id)
    evidence = [f"{link_id}: {link.get('status')} {link.get('statusMessage', '')}".strip()]
    if link.get("status") != "AVAILABLE":
        return finding(
            "routing.vpc_link",
            title,
            Status.FAIL,
            evidence,
            "the link is not AVAILABLE: check its target NLB and the NLB's listener to the ALB",
        )
    return finding("routing.vpc_link", title, Status.PASS, evidence)


@check("routing.security_groups", "Security groups admit the load balancer to the tasks")
def security_groups(ctx: Context) -> list[Finding]:
    title = "security groups of the service"
    if ctx.local:
        return finding(
            "routing.security_groups",
            title,
            Status.NA,
            ["local stack: every component listens on 127.0.0.1; there are no security groups"],
        )
    cluster, name = ctx.infra.cluster_name, str(ctx.infra.service_definition["serviceName"])
    services = ctx.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
    network = (
        (services[0].get("networkConfiguration") or {}).get("awsvpcConfiguration", {})
        if services
        else {}
    )
    group_ids = network.get("securityGroups", [])
    if not group_ids:
        return finding(
            "routing.security_groups",
            title,
            Status.FAIL,
            ["the service has no security groups"],
            "set networkConfiguration.awsvpcConfiguration.securityGroups",
        )
    port = ctx.infra.container_port
    groups = ctx.client("ec2").describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    evidence, admits, open_world = [], False, False
    for group in groups:
        for rule in group.get("IpPermissions", []):
            low, high = rule.get("FromPort", 0), rule.get("ToPort", 65535)
            if rule.get("IpProtocol") in ("-1", "tcp") and low <= port <= high:
                sources = [p["GroupId"] for p in rule.get("UserIdGroupPairs", [])] + [
                    r["CidrIp"] for r in rule.get("IpRanges", [])
                ]
                evidence.append(
                    f"{group['GroupId']} admits port {port} from {', '.join(sources) or 'nothing'}"
                )
                admits = admits or bool(sources)
                open_world = open_world or "0.0.0.0/0" in sources
    if not admits:
        return finding(
            "routing.security_groups",
            title,
            Status.FAIL,
            evidence or [f"nothing admits port {port}"],
            f"admit the ALB's security group on port {port}",
        )
    if open_world:
        return finding(
            "routing.security_groups",
            title,
            Status.WARN,
            evidence,
            "admit only the ALB's security group, not 0.0.0.0/0",
        )
    return finding("routing.security_groups", title, Status.PASS, evidence)
