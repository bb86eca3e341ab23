"""Item 8: reachable only from inside the VPC — live by real source address, statically from
``infra/terraform`` through the project's own parser, and checkov in its own environment."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import httpx

from harness.stack.terraform import Block, InfraError, Terraform
from harness.verify.checks import checkov
from harness.verify.model import Evidence, ItemResult, Status, Table, bi, not_checked, verdict
from harness.verify.target import OUTSIDE_ADDRESS, VERIFY_VPC_CIDRS, Options, Target

#: API Gateway's answer to a caller its resource policy denies (private API, source not in the VPC)
DENIED_PREFIX = "User: anonymous is not authorized to perform: execute-api:Invoke"
PROBE = ("/query/user", {"user_id": "test_user_001"})
#: stand-ins for values only known at deploy time, so every expression evaluates
DEPLOY_VARIABLES = {"vpc_id": "vpc-verify", "private_subnet_ids": ["subnet-private-a", "subnet-private-b"]}
OPEN = ("0.0.0.0/0", "::/0")


def check_vpc_only(target: Target, options: Options) -> ItemResult:
    """(a) live, (b) static, (c) checkov; FAIL if any part fails, NOT CHECKED if one could not run."""
    evidence = Evidence()
    parts = {
        "a": _live(target, options, evidence),
        "b": _static(options.root, evidence),
        "c": checkov.run(options.root, evidence),
    }
    evidence.tables.insert(0, Table(bi("Parts", "子項"), ["part", "result"],
                                    [[k, v.value] for k, v in parts.items()]))
    if Status.FAIL in parts.values():
        return verdict(False, bi(""), bi(f"{len(evidence.failures)} problem(s): {evidence.failures[0]}",
                                         f"發現 {len(evidence.failures)} 個問題：{evidence.failures[0]}"),
                       evidence, "8")
    unchecked = [k for k, v in parts.items() if v is Status.NOT_CHECKED]
    if unchecked:
        return not_checked("8", bi(f"part(s) {', '.join(unchecked)} not checked: "
                                   f"{'; '.join(evidence.excerpts[-len(unchecked):])}",
                                   f"子項 {', '.join(unchecked)} 未檢查"), evidence)
    return verdict(True, bi("Outside callers get API Gateway's 403, inside callers are served; the "
                            "Terraform keeps everything private; checkov findings fixed or waived.",
                            "VPC 外的呼叫得到 API Gateway 的 403，VPC 內正常服務；Terraform 全部為私有配置；"
                            "checkov 發現皆已修正或豁免。"), bi(""), evidence, "8")


def _live(target: Target, options: Options, evidence: Evidence) -> Status:
    """(a): the same request from 127.0.0.2 (outside) and 127.0.0.1 (inside), real source addresses."""
    url, probe_gateway = target.gateway_url, None
    outside_ip = ipaddress.ip_address(OUTSIDE_ADDRESS)
    inside_range = any(outside_ip in ipaddress.ip_network(c, strict=False) for c in target.vpc_cidrs)
    if target.local and inside_range:
        # The running stack admits all of 127.0.0.0/8: serve the same API definition, in front of the
        # same load balancer, with the VPC range the verify run uses.
        probe_gateway = _probe_gateway(target, options)
        url = probe_gateway.stage_url
        evidence.fact("8a gateway", "8a Gateway",
                      f"the running stack admits {', '.join(target.vpc_cidrs)}: a gateway from "
                      f"infra/api-gateway with range {VERIFY_VPC_CIDRS[0]} in front of its load balancer")
    try:
        outside = _call(url, OUTSIDE_ADDRESS if target.local else None)
        inside = _call(url, "127.0.0.1") if target.local else None
    finally:
        if probe_gateway is not None:
            probe_gateway.stop()
    evidence.fact("8a request from outside the VPC", "8a 來自 VPC 外的請求",
                  f"source {OUTSIDE_ADDRESS if target.local else 'this machine'}: {outside[0]} {outside[1][:200]}")
    if inside is not None:
        evidence.fact("8a same request from inside", "8a 來自 VPC 內的相同請求", f"source 127.0.0.1: {inside[0]}")
    denied = outside[0] == 403 and DENIED_PREFIX in outside[1]
    if not target.local and outside[0] == 200:
        evidence.excerpts.append("8a: this machine is inside the stage's VPC, so the refusal cannot be seen from here")
        return Status.NOT_CHECKED
    if not denied:
        evidence.failures.append(
            f"8a: a request from outside the VPC was answered {outside[0]} {outside[1][:160]}, "
            "not API Gateway's 403 (the resource policy does not limit the source)")
    if inside is not None and inside[0] != 200:
        evidence.failures.append(f"8a: the same request from inside was answered {inside[0]}")
    return Status.PASS if denied and (inside is None or inside[0] == 200) else Status.FAIL


def _call(url: str, source: str | None) -> tuple[int, str]:
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(base_url=url, timeout=15.0, transport=transport) as client:
        response = client.post(PROBE[0], json=PROBE[1])
        return response.status_code, response.text


def _probe_gateway(target: Target, options: Options) -> Any:
    from harness.ingress.gateway import Gateway
    from harness.stack import state as state_file

    state = state_file.read(target.log_dir.parent) if target.log_dir else None
    upstream = (state or {}).get("load_balancer_url") or target.gateway_url.rsplit("/", 1)[0]
    document = json.loads((options.root / "infra" / "api-gateway" / "internal-api.json").read_text("utf-8"))
    return Gateway(document, upstream, allowed_source_cidrs=VERIFY_VPC_CIDRS).start()


def _static(root: Path, evidence: Evidence) -> Status:
    """(b): what infra/terraform deploys, read by harness/stack/terraform.py."""
    try:
        tf = Terraform(root / "infra" / "terraform", DEPLOY_VARIABLES, lambda b, a: f"<{b.address}.{a}>")
        findings = static_findings(tf, root)
    except InfraError as exc:
        findings = [f"infra/terraform cannot be read: {exc}"]
    rows = [[f] for f in findings] or [["none"]]
    evidence.tables.append(Table(bi("8b static findings in infra/terraform", "8b infra/terraform 靜態檢查發現"),
                                 ["finding"], rows))
    evidence.failures.extend(f"8b: {f}" for f in findings)
    return Status.FAIL if findings else Status.PASS


def static_findings(tf: Terraform, root: Path) -> list[str]:
    """Everything in the Terraform that would let the API or the service be reached from outside."""
    found: list[str] = []
    for api in tf.of_type("aws_api_gateway_rest_api"):
        config = tf.eval(tf.sub_blocks(api, "endpoint_configuration"), api.file)
        types = [t for c in config for t in c.get("types", [])]
        if types != ["PRIVATE"]:
            found.append(f"{api.address}: endpoint type {types or 'EDGE (default)'}, not PRIVATE")
        if not any(c.get("vpc_endpoint_ids") for c in config):
            found.append(f"{api.address}: no vpc_endpoint_ids")
    document = json.loads((root / "infra" / "api-gateway" / "internal-api.json").read_text("utf-8"))
    found.extend(policy_findings(document.get("x-amazon-apigateway-policy")))
    for lb in tf.of_type("aws_lb"):
        if tf.attr(lb, "internal") is not True:
            found.append(f"{lb.address}: internal is not true")
        subnets = tf.attr(lb, "subnets")
        if subnets != DEPLOY_VARIABLES["private_subnet_ids"]:
            found.append(f"{lb.address}: subnets {subnets} are not var.private_subnet_ids")
    for service in tf.of_type("aws_ecs_service"):
        for network in tf.eval(tf.sub_blocks(service, "network_configuration"), service.file) or [{}]:
            if network.get("assign_public_ip") is not False:
                found.append(f"{service.address}: assign_public_ip is not false")
            if network.get("subnets") != DEPLOY_VARIABLES["private_subnet_ids"]:
                found.append(f"{service.address}: tasks not in var.private_subnet_ids")
    for group in tf.of_type("aws_security_group"):
        found.extend(_ingress_findings(tf, group))
    return found


def policy_findings(policy: Any) -> list[str]:
    """The API's resource policy must deny every source outside the VPC (or its endpoint)."""
    if not policy:
        return ["internal-api.json: no x-amazon-apigateway-policy (any caller of the endpoint is admitted)"]
    statements = policy.get("Statement", [])
    denies = [
        s for s in statements
        if s.get("Effect") == "Deny"
        and any(k.lower() in ("aws:sourcevpc", "aws:sourcevpce")
                for k in s.get("Condition", {}).get("StringNotEquals", {}))
    ]
    problems = [] if denies else [
        "internal-api.json policy: no Deny with StringNotEquals aws:SourceVpc/aws:SourceVpce"]
    for s in statements:
        if s.get("Effect") == "Allow" and not s.get("Condition") and not denies:
            problems.append("internal-api.json policy: an unconditional Allow with nothing denying outside sources")
    return problems


def _ingress_findings(tf: Terraform, group: Block) -> list[str]:
    found = []
    for rule in tf.eval(tf.sub_blocks(group, "ingress"), group.file):
        cidrs = [*rule.get("cidr_blocks", []), *rule.get("ipv6_cidr_blocks", [])]
        if any(c in OPEN for c in cidrs):
            found.append(f"{group.address}: ingress port {rule.get('from_port')} open to {cidrs}")
        if not cidrs and not rule.get("security_groups"):
            found.append(f"{group.address}: ingress port {rule.get('from_port')} names no source")
    return found
