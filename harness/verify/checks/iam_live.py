"""Item 9 on the live endpoint: (a) each role's own session is allowed what ``iam.tf`` grants and
refused what it does not, (b) the endpoint's decisions during the run against the grants.

The endpoint's IAM enforcement (``harness.aws.iam_enforcement``) is switched on for the whole
verify run by :func:`enforced_run` and answers ``/_harness/iam`` and ``/_harness/iam/decisions``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from harness.stack.infra import Infra
from harness.verify.model import Evidence, Status, Table, bi
from harness.verify.target import Target

logger = logging.getLogger("harness.verify.iam")

CONTROL = "/_harness/iam"
DECISIONS = CONTROL + "/decisions"
TABLE_VARIABLE = "NOTIFICATION_TABLE_NAME"
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
SESSION = "verify-iam-probe"


@contextmanager
def enforced_run(target: Target) -> Iterator[bool]:
    """IAM enforcement on for the block on a local target's endpoint, its decision record
    cleared at the start; the previous state is restored after. Yields whether it is on."""
    if not target.local or target.edge_url is None:
        yield False
        return
    try:
        answer = httpx.put(target.edge_url + CONTROL, json={"enforce": True}, timeout=10)
        answer.raise_for_status()
        previous = bool(answer.json()["previous"])
        httpx.delete(target.edge_url + DECISIONS, timeout=10).raise_for_status()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        logger.warning("IAM enforcement could not be switched on at %s: %s", target.edge_url, exc)
        yield False
        return
    try:
        yield True
    finally:
        try:
            httpx.put(target.edge_url + CONTROL, json={"enforce": previous}, timeout=10)
        except httpx.HTTPError as exc:
            logger.warning("IAM enforcement could not be restored to %s: %s", previous, exc)


def item_9_last(ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the order to run the items in: 9 after the others, the order to report them in)."""
    order = list(ids)
    return [i for i in order if i != "9"] + (["9"] if "9" in order else []), order


def enforcement_for(target: Target, ids: list[str]) -> ExitStack:
    """:func:`enforced_run` entered when item 9 is among ``ids``; ``close()`` restores."""
    stack = ExitStack()
    if "9" in ids:
        stack.enter_context(enforced_run(target))
    return stack


def endpoint_state(target: Target) -> dict[str, Any] | None:
    """The endpoint's IAM switch and decision record; None where it has none (not our endpoint)."""
    assert target.edge_url is not None
    try:
        answer = httpx.get(target.edge_url + DECISIONS, timeout=10)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    document = answer.json()
    return document if isinstance(document, dict) and "decisions" in document else None


# ---------------------------------------------------------------------------------- 9b


def observed_vs_granted(
    state: dict[str, Any], grants: dict[str, list[tuple[str, str]]], evidence: Evidence
) -> Status:
    """``grants``: role -> [(statement id, action)]. A denial of a stack role FAILS; a granted
    action never used is a finding (not a failure: see the item's note)."""
    rows = [r for r in state["decisions"] if r["role"] in grants]
    denied = [r for r in rows if not r["allowed"]]
    for r in denied:
        evidence.failures.append(
            f"9b: {r['role']} was denied {r['action']} on {r['resource']} ({r['count']}x during the run)"
        )
    table = []
    for role, granted in grants.items():
        used = sorted({r["action"] for r in rows if r["role"] == role and r["allowed"]})
        unused = [f"{action} ({sid})" for sid, action in granted
                  if action.lower() not in {u.lower() for u in used}]
        table.append([role, ", ".join(sorted({a for _, a in granted})), ", ".join(used) or "-",
                      ", ".join(unused) or "-"])
        for finding in unused:
            evidence.excerpts.append(f"9b finding: {role} is granted {finding} but did not use it: "
                                     f"{unused_because(finding.split(' ', 1)[0])}")
    evidence.tables.append(Table(
        bi("9b actions granted (infra/terraform) and used during the run (endpoint decisions)",
           "9b 授權的動作（Terraform）與本次執行實際使用的動作（端點決策紀錄）"),
        ["role", "granted", "used", "granted, never used (statement)"], table))
    decided = sum(r["count"] for r in rows)
    evidence.fact("9b decisions for the stack's roles (allowed / denied)", "9b 堆疊角色的決策（允許／拒絕）",
                  f"{decided - sum(r['count'] for r in denied)} / {sum(r['count'] for r in denied)}")
    if state.get("mean_decision_ms") is not None:
        evidence.fact("9a mean cost of one IAM decision", "9a 每次 IAM 決策平均耗時",
                      f"{state['mean_decision_ms']} ms over {state['decided_requests']} requests")
    if denied:
        return Status.FAIL
    if decided == 0:
        evidence.excerpts.append("9b: no request of the stack's roles was decided during the run")
        return Status.NOT_CHECKED
    return Status.PASS


#: why a granted action is not seen on the endpoint although the role needs it on AWS
ON_BEHALF = {
    "ecr": "image pulls: no ECR here, the harness runs the service's code itself",
    "logs": "Lambda and the awslogs driver write logs for the role; here the harness does, "
            "with its own key",
    "dynamodb:ListStreams": "Lambda's poller reads the stream it was given (as the function's "
                            "role: DescribeStream, GetShardIterator, GetRecords), never lists them",
    "dynamodb:DescribeStream": "the mapping's poller (as the function's role) describes the stream "
                               "when it starts reading shards, before this run's enforcement began; "
                               "its reads since then follow the iterators it holds",
    "sqs:SendMessage": "the event source mapping sends discarded batches as the function's role "
                       "(a failure path); here the harness's poller does, with its own key",
}
ON_BEHALF["dynamodb:GetShardIterator"] = ON_BEHALF["dynamodb:DescribeStream"]


def unused_because(action: str) -> str:
    """Why a grant may go unused here, or that the code did not call it during the run."""
    return ON_BEHALF.get(action) or ON_BEHALF.get(action.split(":", 1)[0]) or (
        "the component's own code did not call it during this run")


# ---------------------------------------------------------------------------------- 9a


@dataclass(frozen=True)
class Probe:
    role: str
    allowed: bool  # what iam.tf says
    action: str
    resource: str
    call: Callable[[Callable[[str], Any]], Any]  # given the role's client factory


def probes(infra: Infra, target: Target, stream_arn: str | None) -> list[Probe]:
    """One granted and one refused call per stack role, from infra/ (names and keys)."""
    scope = f"{infra.region}:{infra.account_id}"
    found: list[Probe] = []
    mapped = {m.function_name: m for m in infra.mappings}
    query = next((f for f in infra.functions if f.name not in mapped), None)
    processor = next((f for f in infra.functions if f.name in mapped), None)
    if query is not None and TABLE_VARIABLE in query.environment:
        table = query.environment[TABLE_VARIABLE]
        other = next((t.name for t in infra.tables if t.name != table), None)
        found.append(Probe(query.role_name, True, "dynamodb:Query",
                           f"arn:aws:dynamodb:{scope}:table/{table}", _query(infra, table)))
        if other:
            found.append(Probe(query.role_name, False, "dynamodb:Query",
                               f"arn:aws:dynamodb:{scope}:table/{other}", _query(infra, other)))
    if processor is not None and stream_arn:
        found.append(Probe(processor.role_name, True, "dynamodb:DescribeStream", stream_arn,
                           lambda c: c("dynamodbstreams").describe_stream(StreamArn=stream_arn)))
        written = processor.environment.get(TABLE_VARIABLE)
        if written:  # it writes the read side; it may not read it
            found.append(Probe(processor.role_name, False, "dynamodb:Query",
                               f"arn:aws:dynamodb:{scope}:table/{written}", _query(infra, written)))
    task = str(infra.task_definition.get("taskRoleArn", "")).rsplit("/", 1)[-1]
    if task and query is not None:
        payload = json.dumps({"query_type": "user", "id": SESSION, "limit": 1})
        found.append(Probe(task, True, "lambda:InvokeFunction",
                           f"arn:aws:lambda:{scope}:function:{query.name}",
                           lambda c: c("lambda").invoke(FunctionName=query.name, Payload=payload)))
    if task and processor is not None:  # harmless if wrongly allowed: a batch of no records
        found.append(Probe(task, False, "lambda:InvokeFunction",
                           f"arn:aws:lambda:{scope}:function:{processor.name}",
                           lambda c: c("lambda").invoke(FunctionName=processor.name,
                                                        Payload=b'{"Records": []}')))
    execution = str(infra.task_definition.get("executionRoleArn", "")).rsplit("/", 1)[-1]
    group = infra.container.get("logConfiguration", {}).get("options", {}).get("awslogs-group")
    if execution and group:
        stream = f"{SESSION}-{int(time.time() * 1000)}"
        found.append(Probe(execution, True, "logs:CreateLogStream",
                           f"arn:aws:logs:{scope}:log-group:{group}:log-stream:{stream}",
                           lambda c: c("logs").create_log_stream(logGroupName=group,
                                                                 logStreamName=stream)))
        if query is not None:
            other_group = f"/aws/lambda/{query.name}"
            found.append(Probe(execution, False, "logs:CreateLogStream",
                               f"arn:aws:logs:{scope}:log-group:{other_group}:log-stream:{stream}",
                               lambda c: c("logs").create_log_stream(logGroupName=other_group,
                                                                     logStreamName=stream)))
    return found


def run_probes(target: Target, infra: Infra, found: list[Probe], evidence: Evidence) -> Status:
    """Each probe with its role's own session (STS AssumeRole on the endpoint)."""
    assert target.edge_url is not None
    sts = target.client("sts")
    sessions: dict[str, Callable[[str], Any]] = {}
    rows, failed = [], False
    for probe in found:
        if probe.role not in sessions:
            arn = f"arn:aws:iam::{infra.account_id}:role/{probe.role}"
            keys = sts.assume_role(RoleArn=arn, RoleSessionName=SESSION)["Credentials"]
            sessions[probe.role] = _factory(target, keys)
        try:
            probe.call(sessions[probe.role])
            outcome = "allowed"
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            outcome = "denied" if code in DENIED_CODES else f"allowed (then {code})"
        except BotoCoreError as exc:
            outcome = f"error: {exc}"
        ok = outcome.startswith("allowed") if probe.allowed else outcome == "denied"
        failed |= not ok
        if not ok:
            expected = "allowed" if probe.allowed else "denied"
            evidence.failures.append(
                f"9a: {probe.role} {probe.action} on {probe.resource}: {outcome}, iam.tf says "
                f"{expected}")
        rows.append([probe.role, probe.action, probe.resource,
                     "granted" if probe.allowed else "not granted", outcome, "ok" if ok else "WRONG"])
    evidence.tables.append(Table(bi("9a probes with each role's own session",
                                    "9a 以各角色自身工作階段進行的探測"),
                                 ["role", "action", "resource", "iam.tf", "endpoint", "check"], rows))
    return Status.FAIL if failed or not found else Status.PASS


def _factory(target: Target, keys: dict[str, Any]) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=target.edge_url, region_name=target.region,
            aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
            config=Config(retries={"max_attempts": 1}, read_timeout=30),
        )
    return client


def _query(infra: Infra, table: str) -> Callable[[Callable[[str], Any]], Any]:
    spec = infra.table(table)
    kind = spec.attributes.get(spec.hash_key, "S")
    value = {kind: "0" if kind == "N" else SESSION}

    def call(client: Callable[[str], Any]) -> Any:
        return client("dynamodb").query(
            TableName=table, Limit=1, KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": spec.hash_key},
            ExpressionAttributeValues={":v": value},
        )
    return call
