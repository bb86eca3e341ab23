"""IAM 權限 and CloudWatch 日誌: each role against what its component needs; the log groups."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status
from harness.doctor.needs import Need, needs
from harness.doctor.policy import PolicyDocument, evaluate, parse_document
from harness.doctor.registry import check, finding


def role_policies(iam: Any, role: str) -> dict[str, PolicyDocument]:
    """The role's inline and attached managed policies, by name (IAM's read API only)."""
    documents: dict[str, PolicyDocument] = {}
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role):
        for name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            documents[name] = parse_document(document)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
        for attached in page["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(
                PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
            )["PolicyVersion"]
            documents[attached["PolicyName"]] = parse_document(version["Document"])
    return documents


def _stream_arns(ctx: Context) -> dict[str, str]:
    found = {}
    for mapping in ctx.infra.mappings:
        table = ctx.client("dynamodb").describe_table(TableName=mapping.source_table)["Table"]
        if table.get("LatestStreamArn"):
            found[mapping.source_table] = table["LatestStreamArn"]
    return found


@check("permissions.roles", "Each role allows what its component does")
def roles(ctx: Context) -> list[Finding]:
    wanted = needs(ctx.infra, ctx.region, ctx.account(), _stream_arns(ctx))
    by_role: dict[str, list[Need]] = {}
    for need in wanted:
        by_role.setdefault(need.role, []).append(need)
    iam = ctx.client("iam")
    findings: list[Finding] = []
    for role, role_needs in sorted(by_role.items()):
        check_id, title = f"permissions.{role}", f"role {role}"
        try:
            documents = role_policies(iam, role)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
            findings += finding(
                check_id,
                title,
                Status.FAIL,
                [f"role {role} does not exist"],
                "create it (infra/terraform/iam.tf)",
            )
            continue
        missing, conditional = [], []
        for need in role_needs:
            decision = evaluate(list(documents.values()), need.action, need.resource)
            if not decision.allowed:
                missing.append(need)
            elif decision.conditional:
                conditional.append(need)
        evidence = [
            f"{len(role_needs) - len(missing)} of {len(role_needs)} needed actions allowed by "
            f"{', '.join(sorted(documents)) or 'no policy'}"
        ]
        evidence += [f"denied: {n.action} on {n.resource} ({n.why})" for n in missing]
        if missing:
            findings += finding(
                check_id,
                title,
                Status.FAIL,
                evidence,
                f"grant {', '.join(sorted({n.action for n in missing}))} in infra/terraform/iam.tf and apply",
            )
        elif conditional:
            findings += finding(
                check_id,
                title,
                Status.WARN,
                evidence
                + [
                    f"allowed only under a condition doctor does not evaluate: {n.action}"
                    for n in conditional
                ],
                "check the statements' conditions by hand",
            )
        else:
            findings += finding(check_id, title, Status.PASS, evidence)
    return findings


@check("logs.groups", "The log groups exist and receive events")
def groups(ctx: Context) -> list[Finding]:
    logs = ctx.client("logs")
    minutes = f"{ctx.window_s / 60:.0f} min"
    evidence, missing, quiet = [], [], []
    for name in sorted(ctx.infra.log_groups):
        listed = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if not any(g["logGroupName"] == name for g in listed):
            missing.append(name)
            evidence.append(f"{name}: missing")
            continue
        streams = logs.describe_log_streams(
            logGroupName=name, orderBy="LastEventTime", descending=True, limit=1
        )["logStreams"]
        last = max((int(s.get("lastEventTimestamp") or 0) for s in streams), default=0)
        if last < ctx.since_ms:
            quiet.append(name)
            evidence.append(f"{name}: no events in the last {minutes}")
        else:
            evidence.append(f"{name}: events in the last {minutes}")
    title = f"{len(ctx.infra.log_groups)} log groups from infra/"
    if missing:
        return finding(
            "logs.groups",
            title,
            Status.FAIL,
            evidence,
            f"create {', '.join(missing)} (infra/terraform/main.tf): "
            "with least privilege the writers cannot create log groups",
        )
    if quiet:
        return finding(
            "logs.groups",
            title,
            Status.WARN,
            evidence,
            "nothing logged lately: is the component running, and may its role write logs?",
        )
    return finding("logs.groups", title, Status.PASS, evidence)
