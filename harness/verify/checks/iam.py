"""Item 9: least privilege — (a) IAM enforced on the endpoint, (b) actions used vs granted,
(c) static: no wildcard action in the policies ``infra/terraform`` renders, parliament clean."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from harness.stack.infra import load_infra
from harness.stack.terraform import InfraError
from harness.verify.checks import checkov
from harness.verify.model import Evidence, ItemResult, Status, Table, bi, not_checked, verdict
from harness.verify.target import Options, Target

#: actions AWS documents without resource-level permissions: "*" is the only valid Resource
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken", "dynamodb:ListStreams", "logs:CreateLogGroup", "xray:PutTraceSegments",
}
ACCOUNT, REGION = "123456789012", "ap-southeast-1"


def check_least_privilege(target: Target, options: Options) -> ItemResult:
    """FAIL if a static or enforced part fails; NOT CHECKED while (a) and (b) cannot run."""
    evidence = Evidence()
    parts = {"c": _static(options.root, evidence)}
    parts["a"] = _enforced(target, evidence) if target.local else Status.NOT_CHECKED
    parts["b"] = Status.NOT_CHECKED
    evidence.excerpts.append(
        "9b: the endpoint does not record (role, action, resource, decision) yet; the components "
        "already call AWS as their own roles (task role, Lambda execution roles)")
    evidence.tables.insert(0, Table(bi("Parts", "子項"), ["part", "result"],
                                    [[k, parts[k].value] for k in ("a", "b", "c")]))
    if Status.FAIL in parts.values():
        return verdict(False, bi(""), bi(f"{evidence.failures[0]}", f"{evidence.failures[0]}"), evidence, "9")
    why = "; ".join(evidence.excerpts)
    return not_checked(
        "9",
        bi(f"Static part passed; enforcement (a) and observed-vs-granted (b) cannot be checked yet: {why}",
           f"靜態檢查通過；(a) 強制檢查與 (b) 使用與授權對照尚無法檢查：{why}"),
        evidence,
    )


def rendered_policies(root: Path) -> dict[str, dict[str, Any]]:
    """Every role's inline policy as infra/terraform renders it (harness/stack/infra.py), by
    ``role/policy``."""
    infra = load_infra(root, region=REGION, account_id=ACCOUNT)
    return {
        f"{role.name}/{name}": document
        for role in infra.roles
        for name, document in role.inline_policies.items()
    }


def wildcard_findings(policies: dict[str, dict[str, Any]]) -> list[str]:
    """A '*' in an action, or a '*' resource on an action that has resource-level permissions."""
    found = []
    for name, policy in policies.items():
        for statement in policy["Statement"]:
            sid = statement.get("Sid", "?")
            for action in _list(statement["Action"]):
                if "*" in action:
                    found.append(f"{name}/{sid}: wildcard action {action}")
            if "*" in _list(statement.get("Resource", [])):
                broad = [a for a in _list(statement["Action"]) if a not in NO_RESOURCE_LEVEL]
                if broad:
                    found.append(f"{name}/{sid}: Resource '*' for {', '.join(broad)}")
    return found


def _static(root: Path, evidence: Evidence) -> Status:
    try:
        policies = rendered_policies(root)
    except InfraError as exc:
        evidence.failures.append(f"9c: infra/terraform cannot be read: {exc}")
        return Status.FAIL
    findings = wildcard_findings(policies)
    rows = [[name, s.get("Sid", "?"), ", ".join(_list(s["Action"])), ", ".join(_list(s.get("Resource", "-")))]
            for name, p in policies.items() for s in p["Statement"]]
    evidence.tables.append(Table(bi("9c statements rendered from infra/terraform", "9c 由 Terraform 產生的政策敘述"),
                                 ["policy", "sid", "actions", "resources"], rows))
    findings += _parliament(root, policies, evidence)
    evidence.failures.extend(f"9c: {f}" for f in findings)
    evidence.fact("9c policies / statements", "9c 政策／敘述", f"{len(policies)} / {len(rows)}")
    return Status.FAIL if findings else Status.PASS


def _parliament(root: Path, policies: dict[str, dict[str, Any]], evidence: Evidence) -> list[str]:
    """parliament (in the tools environment of checkov) over each identity policy."""
    binary = checkov.executable(root).parent / "parliament"
    if not binary.is_file():
        evidence.excerpts.append(f"9c: parliament is not installed ({binary}): run 'make checkov-venv'")
        return []
    found = []
    for name, policy in policies.items():
        done = subprocess.run([str(binary), "--string", json.dumps(policy), "--json"],
                              capture_output=True, text=True, timeout=120)
        for line in done.stdout.splitlines():
            if line.strip():
                issue = json.loads(line)
                if issue.get("severity") in ("HIGH", "MEDIUM", "CRITICAL"):
                    found.append(f"{name}: parliament {issue.get('issue')} {issue.get('detail')}")
    evidence.fact("9c parliament", "9c parliament", f"{len(found)} finding(s) of severity MEDIUM or above")
    return found


def _enforced(target: Target, evidence: Evidence) -> Status:
    """(a): an unknown access key must be refused; if it is served, IAM is not enforced."""
    client = boto3.client(
        "dynamodb", endpoint_url=target.edge_url, region_name=target.region,
        aws_access_key_id="AKIAVERIFYUNKNOWN000", aws_secret_access_key="verify-unknown",
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except ClientError as exc:
        evidence.fact("9a unknown credentials", "9a 未知憑證", f"refused: {exc.response['Error']['Code']}")
        evidence.excerpts.append("9a: IAM is enforced; the per-role probes are not written yet")
        return Status.NOT_CHECKED
    except BotoCoreError as exc:
        evidence.failures.append(f"9a: the endpoint could not be asked: {exc}")
        return Status.FAIL
    evidence.fact("9a unknown credentials", "9a 未知憑證", "served: IAM access control is off on the endpoint")
    evidence.excerpts.append("9a: the endpoint serves any credentials: moto's IAM access control is off, "
                             "and DynamoDB requests carry no resource ARN for it to match")
    return Status.NOT_CHECKED


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
