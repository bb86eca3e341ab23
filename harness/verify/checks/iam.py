"""Item 9: least privilege — (a) IAM enforced on the endpoint, each role's own session allowed
what ``iam.tf`` grants and refused the rest, (b) the endpoint's decisions during the run against
the grants (a denial fails; a grant never used is a finding), (c) static: no wildcard action in
the policies ``infra/terraform`` renders, parliament clean.

A granted action that was never used does not fail the item: locally some grants are exercised by
AWS's services on the role's behalf, which the harness does with its own key (the event source
mapping reads the stream and sends discarded batches to the queue; Lambda and the awslogs driver
ship logs; ECR pulls do not happen), and others only on failure paths."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from harness.stack.infra import load_infra
from harness.stack.terraform import InfraError
from harness.verify.checks import checkov, iam_live
from harness.verify.model import Evidence, ItemResult, Status, Table, bi, not_checked, verdict
from harness.verify.target import Options, Target

#: actions AWS documents without resource-level permissions: "*" is the only valid Resource
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken", "dynamodb:ListStreams", "logs:CreateLogGroup", "xray:PutTraceSegments",
}
ACCOUNT, REGION = "123456789012", "ap-southeast-1"


def check_least_privilege(target: Target, options: Options) -> ItemResult:
    """PASS when (a) enforcement and the per-role probes, (b) no denial during the run and
    (c) the static policies all pass; FAIL naming the first failure."""
    evidence = Evidence()
    parts = {"c": _static(options.root, evidence)}
    if target.local and target.edge_url is not None:
        parts["b"], parts["a"] = _live(target, options, evidence)
    else:
        parts["a"] = parts["b"] = Status.NOT_CHECKED
        evidence.excerpts.append("9a/9b: need the stack's own AWS endpoint (local target only)")
    evidence.tables.insert(0, Table(bi("Parts", "子項"), ["part", "result"],
                                    [[k, parts[k].value] for k in ("a", "b", "c")]))
    if Status.FAIL in parts.values():
        first = evidence.failures[0]
        return verdict(False, bi(""), bi(first, first), evidence, "9")
    if all(status is Status.PASS for status in parts.values()):
        return verdict(
            True,
            bi("IAM enforced on the endpoint for the whole run: each role is allowed what iam.tf "
               "grants and refused the rest, no call of the run was denied, no wildcard",
               "整個執行期間端點強制執行 IAM：各角色僅能執行 iam.tf 授權的動作，其餘被拒絕；"
               "執行期間無任何呼叫被拒絕；無萬用字元"),
            bi(""), evidence, "9")
    why = "; ".join(e for e in evidence.excerpts if not e.startswith("9b finding"))
    return not_checked(
        "9",
        bi(f"Not every part could be checked here: {why}", f"部分子項無法在此檢查：{why}"),
        evidence,
    )


def _live(target: Target, options: Options, evidence: Evidence) -> tuple[Status, Status]:
    """(9b, 9a) on the local endpoint: the run's decisions first, then the probes."""
    state = iam_live.endpoint_state(target)
    if state is None:
        evidence.excerpts.append("9a: the endpoint has no IAM enforcement (/_harness/iam)")
        return Status.NOT_CHECKED, Status.NOT_CHECKED
    infra = load_infra(options.root, region=target.region, account_id=ACCOUNT)
    grants = {
        role.name: [(str(s.get("Sid", "?")), a) for p in role.inline_policies.values()
                    for s in p["Statement"] for a in _list(s["Action"])]
        for role in infra.roles
    }
    if state["enforce"] and not any(r["role"] in grants for r in state["decisions"]):
        _some_traffic(target, evidence)  # e.g. --only 9: the service's own path, once
        state = iam_live.endpoint_state(target) or state
    observed = iam_live.observed_vs_granted(state, grants, evidence)
    if not _unknown_key_refused(target, evidence) or not state["enforce"]:
        evidence.failures.append(
            "9a: IAM is not enforced on the endpoint: a request with credentials no policy "
            "grants is served (turn it on: 'up --enforce-iam' or PUT /_harness/iam)")
        return observed, Status.FAIL
    stream = None
    for mapping in infra.mappings:
        stream = target.client("dynamodb").describe_table(
            TableName=mapping.source_table)["Table"].get("LatestStreamArn")
    found = iam_live.probes(infra, target, stream)
    return observed, iam_live.run_probes(target, infra, found, evidence)


def _some_traffic(target: Target, evidence: Evidence) -> None:
    """The three queries through the gateway, so the run has the service's own calls to judge."""
    bodies = {"user": {"user_id": "test_user_001"},
              "marketing": {"marketing_id": "campaign_2024_new_year"},
              "fail": {"transaction_id": "tx_002"}}
    statuses = []
    for route, body in bodies.items():
        try:
            answer = httpx.post(f"{target.gateway_url}/query/{route}", json=body, timeout=30)
            statuses.append(f"/query/{route} {answer.status_code}")
        except httpx.HTTPError as exc:
            statuses.append(f"/query/{route} {type(exc).__name__}")
    evidence.excerpts.append("9b: no item before 9 ran the service in this run; the check sent "
                             "three queries through the gateway: " + ", ".join(statuses))


def _unknown_key_refused(target: Target, evidence: Evidence) -> bool:
    client = boto3.client(
        "dynamodb", endpoint_url=target.edge_url, region_name=target.region,
        aws_access_key_id="AKIAVERIFYUNKNOWN000", aws_secret_access_key="verify-unknown",
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except ClientError as exc:
        evidence.fact("9a unknown credentials", "9a 未知憑證", f"refused: {exc.response['Error']['Code']}")
        return True
    except BotoCoreError as exc:
        evidence.fact("9a unknown credentials", "9a 未知憑證", f"not asked: {exc}")
        return False
    evidence.fact("9a unknown credentials", "9a 未知憑證", "served: IAM access control is off")
    return False


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


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
