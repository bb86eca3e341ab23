"""Create the stack that ``infra/`` defines on an AWS endpoint, idempotently, through boto3.

Running it twice changes nothing: every step looks first and creates or updates only what
differs. The same code provisions the embedded endpoint and LocalStack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.stack.control_plane import (
    provision_api,
    provision_cluster,
    provision_service,
    provision_task_definition,
)
from harness.stack.infra import FunctionSpec, Infra, MappingSpec, RoleSpec, TableSpec
from harness.stack.lambda_zip import build_lambda_zip
from harness.stack.project import code_dir
from harness.stack.resource_graph import ResourceGraph

Progress = Callable[[str], None]
#: The services provisioning talks to (and the seed: dynamodb).
CLIENT_SERVICES = ("logs", "sqs", "iam", "dynamodb", "lambda", "ecs", "apigateway")
#: How long a new event source mapping may stay Creating (its poller finding the source).
MAPPING_READY_S = 60.0


@dataclass
class ProvisionResult:
    """What provisioning did, and the identifiers later steps need."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stream_arns: dict[str, str] = field(default_factory=dict)
    function_arns: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    rest_api_id: str | None = None


#: boto3: "Session objects are not thread safe" (clients are): one client is made at a time.
_CLIENT_LOCK = threading.Lock()


def aws_client(
    service: str, endpoint_url: str, region: str, session: boto3.session.Session | None = None
) -> Any:
    """A boto3 client on the endpoint with the test credentials unless the environment has some.

    Pass one ``session`` for many clients, even from several threads: a new session reloads
    botocore's endpoint data and each service's model (~0.1-0.2 CPU-s).
    """
    with _CLIENT_LOCK:
        session = session or boto3.session.Session()
        return _client(service, endpoint_url, region, session)


def new_session() -> boto3.session.Session:
    """A boto3 session to share between the stack's parts (see :func:`aws_client`), with the
    test credentials when the environment has none. botocore keeps a chain's answer only when
    it found credentials: without any, each client walked the whole chain again, the instance
    metadata service last (~25 ms CPU and ~60 ms each, a dozen times)."""
    session = boto3.session.Session()
    if session.get_credentials() is None:
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")
    return session


def _client(service: str, endpoint_url: str, region: str, session: boto3.session.Session) -> Any:
    creds = session.get_credentials()
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=None if creds else "test",
        aws_secret_access_key=None if creds else "test",
        config=Config(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60
        ),
    )


class Provisioner:
    """Applies an :class:`Infra` to the endpoint at ``endpoint_url``."""

    def __init__(
        self,
        infra: Infra,
        endpoint_url: str,
        progress: Progress | None = None,
        vendor_dir: Path | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.infra = infra
        self.vendor_dir = vendor_dir
        self.endpoint_url = endpoint_url
        self.progress = progress or (lambda message: None)
        self.result = ProvisionResult()
        self._clients: dict[str, Any] = {}
        self._session = session or boto3.session.Session()
        self._code: bytes | None = None
        #: mappings created and not yet seen Enabled (:meth:`wait_mappings`)
        self._creating: list[tuple[MappingSpec, dict[str, Any]]] = []
        self._log_groups: set[str] = set()  # the names that existed (:meth:`_list_log_groups`)
        self._role_arns: dict[str, str] = {}  # what :meth:`role` made or found

    def prepare(self) -> Provisioner:
        """Make the clients and the Lambda zip now, without a request: the endpoint may still
        be starting, and this costs ~0.3 CPU-s that need not wait for it."""
        for service in CLIENT_SERVICES:
            self.client(service)
        self._lambda_code()
        return self

    def _lambda_code(self) -> bytes:
        if self._code is None:
            self._code = build_lambda_zip(code_dir(self.infra.root), self.vendor_dir)
        return self._code

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws_client(
                service, self.endpoint_url, self.infra.region, self._session
            )
        return self._clients[service]

    def _did(self, created: bool, what: str) -> None:
        (self.result.created if created else self.result.unchanged).append(what)
        self.progress(f"{'created' if created else 'exists '} {what}")

    def apply(self) -> ProvisionResult:
        """Provision everything, in dependency order."""
        self.apply_data_plane()
        self.apply_control_plane()
        return self.result

    def apply_data_plane(self) -> ProvisionResult:
        """What a request and a command record travel through: logs, queues, roles, tables, functions, mappings.

        Log groups, queues, roles and tables do not depend on each other: they are made
        concurrently (boto3 clients are thread-safe), each function once its role and log group
        exist (:meth:`apply_resources`), then the mappings.
        """
        self.apply_resources()
        return self.apply_mappings()

    def apply_resources(self) -> ProvisionResult:
        """The data plane without its event source mappings (see :meth:`apply_data_plane`).

        As Terraform walks its graph (:class:`ResourceGraph`, 10 at a time): each resource once
        what it references exists, independent ones in parallel. A role's inline policies
        (``aws_iam_role_policy``) need the role; a function needs its role (``role = ...arn``)
        and its log group (``depends_on`` in main.tf, ``/aws/lambda/<name>``), not the tables,
        the queues or the role's policies.
        """
        code = self._lambda_code()
        graph = ResourceGraph()
        listed = graph.add("log groups listed", self._list_log_groups)
        for name, retention in self.infra.log_groups.items():
            graph.add(f"log group {name}", partial(self.log_group, name, retention), [listed])
        for queue in self.infra.queues:
            graph.add(f"queue {queue}", partial(self.queue, queue))
        for table in self.infra.tables:
            graph.add(f"table {table.name}", partial(self.table, table))
        for role in self.infra.roles:
            made = graph.add(f"role {role.name}", partial(self.role, role))
            for policy_name, document in role.inline_policies.items():
                step = partial(self.role_policy, role.name, policy_name, document)
                graph.add(f"role policy {role.name}/{policy_name}", step, [made])
        for spec in self.infra.functions:
            after = [f"role {spec.role_name}"]
            if f"/aws/lambda/{spec.name}" in self.infra.log_groups:
                after.append(f"log group /aws/lambda/{spec.name}")
            graph.add(f"function {spec.name}", partial(self.function, spec, code), after)
        graph.apply()
        return self.result

    def apply_mappings(self, wait: bool = True) -> ProvisionResult:
        """The event source mappings (after :meth:`apply_resources`: they name its tables,
        functions and queues). Creating one starts the function's first environment; each new
        one is waited for until Enabled, unless ``wait`` is False (then :meth:`wait_mappings`)."""
        for mapping in self.infra.mappings:
            self.mapping(mapping)
        if wait:
            self.wait_mappings()
        return self.result

    def wait_mappings(self) -> None:
        """Until every mapping created here is Enabled (or Disabled), as Terraform's
        aws_lambda_event_source_mapping waits after CreateEventSourceMapping (which answers
        Creating at once): records written meanwhile at LATEST would otherwise be missed."""
        lam = self.client("lambda")
        deadline = time.monotonic() + MAPPING_READY_S
        while self._creating:
            spec, mapping = self._creating[0]
            if mapping.get("State") not in ("Creating", "Enabling"):
                self._creating.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the event source mapping {spec.source_table} -> {spec.function_name} is "
                    f"still {mapping['State']} after {MAPPING_READY_S:.0f} s (last result: "
                    f"{mapping.get('LastProcessingResult', '-')})"
                )
            time.sleep(0.05)  # each poll is a request (~2 ms CPU on each side of it)
            self._creating[0] = (spec, lam.get_event_source_mapping(UUID=mapping["UUID"]))

    def apply_control_plane(self) -> ProvisionResult:
        """The ECS objects and the REST API: described on the endpoint, served by the harness
        itself. As Terraform walks them: the cluster, the task definition and the REST API at
        once; the service (it names the cluster and the task definition) after both."""
        ecs, infra, did = self.client("ecs"), self.infra, self._did
        graph = ResourceGraph()
        cluster = graph.add("ECS cluster", partial(provision_cluster, ecs, infra, did))
        task = graph.add("task definition", partial(provision_task_definition, ecs, infra, did))
        graph.add("ECS service", partial(provision_service, ecs, infra, did), [cluster, task])
        graph.add("REST API", self.api)
        graph.apply()
        return self.result

    def _list_log_groups(self) -> None:
        logs = self.client("logs")
        self._log_groups = {
            g["logGroupName"]
            for page in logs.get_paginator("describe_log_groups").paginate()
            for g in page["logGroups"]
        }

    def log_group(self, name: str, retention: int | None) -> None:
        """The log group ``name`` with its retention (after :meth:`_list_log_groups`)."""
        created = name not in self._log_groups
        if created:
            logs = self.client("logs")
            logs.create_log_group(logGroupName=name)
            if retention:
                logs.put_retention_policy(logGroupName=name, retentionInDays=int(retention))
        self._did(created, f"log group {name}")

    def queue(self, name: str) -> None:
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            created = False
        except ClientError:
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            created = True
        self.result.queue_urls[name] = url
        self._did(created, f"queue {name}")

    def role(self, role: RoleSpec) -> None:
        """The role (its ARN kept for the functions); its inline policies are steps of their own."""
        iam = self.client("iam")
        try:
            arn = iam.get_role(RoleName=role.name)["Role"]["Arn"]
            created = False
        except ClientError:
            arn = iam.create_role(
                RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.assume_role_policy)
            )["Role"]["Arn"]
            created = True
        self._role_arns[role.name] = arn
        self._did(created, f"role {role.name}")

    def role_policy(self, role_name: str, policy_name: str, document: dict[str, Any]) -> None:
        """An inline policy of a role (PutRolePolicy replaces one of that name)."""
        self.client("iam").put_role_policy(
            RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
        )

    def table(self, table: TableSpec) -> None:
        dynamodb = self.client("dynamodb")
        try:
            description = dynamodb.describe_table(TableName=table.name)["Table"]
            created = False
        except dynamodb.exceptions.ResourceNotFoundException:
            description = dynamodb.create_table(**_create_table_args(table))["TableDescription"]
            created = True
        deadline = time.monotonic() + 30
        while (
            description.get("TableStatus") not in (None, "ACTIVE") and time.monotonic() < deadline
        ):
            time.sleep(0.1)
            description = dynamodb.describe_table(TableName=table.name)["Table"]
        if table.stream_view_type:
            self.result.stream_arns[table.name] = description["LatestStreamArn"]
        self._did(created, f"table {table.name}")

    def function(self, spec: FunctionSpec, code: bytes) -> None:
        """The function (a graph step after :meth:`role` made or found its role's ARN)."""
        lam = self.client("lambda")
        config = {
            "Role": self._role_arns[spec.role_name],
            "Handler": spec.handler,
            "Runtime": spec.runtime,
            "Timeout": spec.timeout,
            "MemorySize": spec.memory_size,
            "Description": spec.description,
            "Environment": {"Variables": spec.environment},
        }
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
        try:
            current = lam.get_function(FunctionName=spec.name)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:
            arn = lam.create_function(FunctionName=spec.name, Code={"ZipFile": code}, **config)[
                "FunctionArn"
            ]
            self.result.function_arns[spec.name] = arn
            if spec.reserved_concurrency is not None:
                lam.put_function_concurrency(
                    FunctionName=spec.name, ReservedConcurrentExecutions=spec.reserved_concurrency
                )
            self._did(True, f"function {spec.name}")
            return
        changed = False
        if current.get("CodeSha256") != sha:
            lam.update_function_code(FunctionName=spec.name, ZipFile=code)
            changed = True
        if _config_differs(current, config):
            lam.update_function_configuration(FunctionName=spec.name, **config)
            changed = True
        if self._reserve(spec):
            changed = True
        self.result.function_arns[spec.name] = current["FunctionArn"]
        self._did(changed, f"function {spec.name}{' (updated)' if changed else ''}")

    def _reserve(self, spec: FunctionSpec) -> bool:
        """Make the function's reserved concurrency what infra/ says; True if it changed."""
        lam = self.client("lambda")
        have = lam.get_function_concurrency(FunctionName=spec.name).get(
            "ReservedConcurrentExecutions"
        )
        if have == spec.reserved_concurrency:
            return False
        if spec.reserved_concurrency is None:
            lam.delete_function_concurrency(FunctionName=spec.name)
        else:
            lam.put_function_concurrency(
                FunctionName=spec.name, ReservedConcurrentExecutions=spec.reserved_concurrency
            )
        return True

    def mapping(self, spec: MappingSpec) -> None:
        lam = self.client("lambda")
        stream_arn = self.result.stream_arns[spec.source_table]
        existing = lam.list_event_source_mappings(
            FunctionName=spec.function_name, EventSourceArn=stream_arn
        )
        if existing["EventSourceMappings"]:
            self._did(False, f"mapping {spec.source_table} -> {spec.function_name}")
            return
        args: dict[str, Any] = {
            "FunctionName": spec.function_name,
            "EventSourceArn": stream_arn,
            **spec.settings,
        }
        if spec.on_failure_queue:
            queue_url = self.result.queue_urls[spec.on_failure_queue]
            queue_arn = self.client("sqs").get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            args["DestinationConfig"] = {"OnFailure": {"Destination": queue_arn}}
        self._creating.append((spec, lam.create_event_source_mapping(**args)))
        self._did(True, f"mapping {spec.source_table} -> {spec.function_name}")

    def api(self) -> None:
        provision_api(self.client("apigateway"), self.infra, self.result, self._did)


def _create_table_args(table: TableSpec) -> dict[str, Any]:
    key_schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
    if table.range_key:
        key_schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
    args: dict[str, Any] = {
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in table.attributes.items()
        ],
    }
    if table.global_secondary_indexes:
        args["GlobalSecondaryIndexes"] = [
            {
                "IndexName": gsi["name"],
                "KeySchema": [{"AttributeName": gsi["hash_key"], "KeyType": "HASH"}]
                + (
                    [{"AttributeName": gsi["range_key"], "KeyType": "RANGE"}]
                    if gsi.get("range_key")
                    else []
                ),
                "Projection": {"ProjectionType": gsi.get("projection_type", "ALL")},
            }
            for gsi in table.global_secondary_indexes
        ]
    if table.stream_view_type:
        args["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": table.stream_view_type,
        }
    return args


def _config_differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        have = current.get(key)
        if key == "Environment":
            have = (have or {}).get("Variables", {})
            value = value["Variables"]
        if (have or "") != (value or ""):
            return True
    return False
