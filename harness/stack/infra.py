"""The stack as ``infra/`` defines it: tables, queues, roles, functions, mappings, ECS, the API.

Everything the harness provisions is read from here; nothing is defined twice. Names, keys,
environment and settings come from the Terraform and the JSON definitions it reads itself.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.stack.project import default_project_dir
from harness.stack.terraform import Block, InfraError, Terraform

#: the directory holding infra/ and contracts/ (harness.stack.project says how it is found)
ROOT = default_project_dir()


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None
    attributes: dict[str, str]
    global_secondary_indexes: list[dict[str, Any]]
    stream_view_type: str | None


@dataclass(frozen=True)
class RoleSpec:
    name: str
    assume_role_policy: dict[str, Any]
    inline_policies: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    role_name: str
    description: str = ""
    #: ``reserved_concurrent_executions`` (Terraform's default -1, "no reservation", is None)
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class MappingSpec:
    function_name: str
    source_table: str
    settings: dict[str, Any]
    on_failure_queue: str | None


@dataclass(frozen=True)
class HealthCheckSpec:
    path: str = "/health"
    interval_s: float = 10.0
    timeout_s: float = 5.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    deregistration_delay_s: float = 300.0  # the target group's deregistration_delay (AWS default)
    target_group_name: str = ""


@dataclass(frozen=True)
class ScalingSpec:
    """An ``aws_appautoscaling_target`` with its target-tracking ``aws_appautoscaling_policy``."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    policy_name: str
    target_value: float
    metric_type: str
    scale_out_cooldown_s: float = 300.0
    scale_in_cooldown_s: float = 300.0
    disable_scale_in: bool = False
    service_namespace: str = "ecs"
    scalable_dimension: str = "ecs:service:DesiredCount"


@dataclass
class Infra:
    """Everything provisioning needs, read from ``infra/``."""

    root: Path
    region: str
    account_id: str
    tables: list[TableSpec] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    log_groups: dict[str, int | None] = field(default_factory=dict)
    roles: list[RoleSpec] = field(default_factory=list)
    functions: list[FunctionSpec] = field(default_factory=list)
    mappings: list[MappingSpec] = field(default_factory=list)
    cluster_name: str = ""
    task_definition: dict[str, Any] = field(default_factory=dict)
    service_definition: dict[str, Any] = field(default_factory=dict)
    health_check: HealthCheckSpec = field(default_factory=HealthCheckSpec)
    api_document: dict[str, Any] = field(default_factory=dict)
    api_stage: str = "v1"
    scaling: list[ScalingSpec] = field(default_factory=list)
    load_balancer_name: str = ""  # the application load balancer in front of the service
    target_group_name: str = ""
    api_access_log_group: str | None = None  # the stage's access_log_settings destination

    @property
    def container(self) -> dict[str, Any]:
        """The service container of the task definition."""
        return dict(self.task_definition["containerDefinitions"][0])

    @property
    def container_port(self) -> int:
        return int(self.container["portMappings"][0]["containerPort"])

    @property
    def container_environment(self) -> dict[str, str]:
        return {e["name"]: str(e["value"]) for e in self.container.get("environment", [])}

    def table(self, name: str) -> TableSpec:
        for table in self.tables:
            if table.name == name:
                return table
        raise InfraError(f"no table {name!r} in {self.root / 'infra/terraform'}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InfraError(f"{path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InfraError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InfraError(f"{path}: expected a JSON object")
    return data


def _require(path: Path, data: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in data:
            raise InfraError(f"{path}: missing field {key!r}")


def load_infra(
    root: Path = ROOT, *, region: str = "ap-southeast-1", account_id: str = "000000000000"
) -> Infra:
    """Read ``infra/`` under ``root`` into an :class:`Infra`; errors name the file and the field."""
    infra = Infra(root=root, region=region, account_id=account_id)
    ecs_dir = root / "infra" / "ecs"
    infra.task_definition = _read_json(ecs_dir / "task-definition.json")
    _require(
        ecs_dir / "task-definition.json", infra.task_definition, "family", "containerDefinitions"
    )
    infra.service_definition = _read_json(ecs_dir / "service-definition.json")
    _require(
        ecs_dir / "service-definition.json", infra.service_definition, "serviceName", "desiredCount"
    )
    api_path = root / "infra" / "api-gateway" / "internal-api.json"
    infra.api_document = _read_json(api_path)
    _require(api_path, infra.api_document, "paths")

    tf = Terraform(
        root / "infra" / "terraform",
        variables={"aws_region": region},
        computed=lambda block, attr: _computed(infra, tf, block, attr),
    )
    for block in tf.of_type("aws_dynamodb_table"):
        infra.tables.append(_table(tf, block))
    infra.queues = [tf.attr(b, "name") for b in tf.of_type("aws_sqs_queue")]
    infra.log_groups = {
        tf.attr(b, "name"): tf.attr(b, "retention_in_days")
        for b in tf.of_type("aws_cloudwatch_log_group")
    }
    for block in tf.of_type("aws_iam_role"):
        policies = {
            tf.attr(p, "name") or f"{block.name}-policy": json.loads(tf.attr(p, "policy"))
            for p in tf.of_type("aws_iam_role_policy")
            if tf.referenced(p.body.get("role")) is block
        }
        assume = json.loads(tf.attr(block, "assume_role_policy"))
        infra.roles.append(RoleSpec(tf.attr(block, "name"), assume, policies))
    for block in tf.of_type("aws_lambda_function"):
        env_blocks = tf.eval(tf.sub_blocks(block, "environment"), block.file)
        infra.functions.append(
            FunctionSpec(
                name=tf.attr(block, "function_name"),
                handler=tf.attr(block, "handler"),
                runtime=tf.attr(block, "runtime", "python3.12"),
                timeout=int(tf.attr(block, "timeout", 3)),
                memory_size=int(tf.attr(block, "memory_size", 128)),
                environment={
                    k: str(v) for e in env_blocks for k, v in e.get("variables", {}).items()
                },
                role_name=_role_name(tf, block),
                description=tf.attr(block, "description", ""),
                reserved_concurrency=_reserved(tf.attr(block, "reserved_concurrent_executions", -1)),
            )
        )
    for block in tf.of_type("aws_lambda_event_source_mapping"):
        infra.mappings.append(_mapping(tf, block))
    infra.cluster_name = tf.attr(tf.one("aws_ecs_cluster"), "name")
    service_tg = _target_group_for_service(tf)
    if service_tg is not None:
        (check,) = tf.eval(tf.sub_blocks(service_tg, "health_check"), service_tg.file) or [{}]
        infra.health_check = HealthCheckSpec(
            path=check.get("path", "/health"),
            interval_s=float(check.get("interval", 10)),
            timeout_s=float(check.get("timeout", 5)),
            healthy_threshold=int(check.get("healthy_threshold", 2)),
            unhealthy_threshold=int(check.get("unhealthy_threshold", 3)),
            deregistration_delay_s=float(tf.attr(service_tg, "deregistration_delay", 300)),
            target_group_name=str(tf.attr(service_tg, "name", "")),
        )
    if service_tg is not None:
        infra.target_group_name = tf.attr(service_tg, "name")
    for lb in tf.of_type("aws_lb"):
        if tf.attr(lb, "load_balancer_type", "application") == "application":
            infra.load_balancer_name = tf.attr(lb, "name")
    infra.scaling = _scaling(tf)
    stage_block = next(tf.of_type("aws_api_gateway_stage"), None)
    if stage_block is not None:
        infra.api_stage = tf.attr(stage_block, "stage_name")
        for settings in tf.sub_blocks(stage_block, "access_log_settings"):
            group = _reference(
                tf, stage_block, "access_log_settings", settings.get("destination_arn"),
                "an aws_cloudwatch_log_group",
            )
            infra.api_access_log_group = tf.attr(group, "name")
    return infra


def load_infra_cached(root: Path = ROOT, *, region: str, account_id: str, cache_dir: Path) -> Infra:
    """:func:`load_infra`, reusing the last result while ``infra/`` and this reader are unchanged.

    Parsing the Terraform with python-hcl2 costs ~0.5 s; the cache key covers every file under
    ``infra/``, the reader's own source, the region and the account.
    """
    digest = hashlib.sha256(f"{region}/{account_id}".encode())
    sources = [
        Path(__file__),
        Path(__file__).with_name("terraform.py"),
        *sorted((root / "infra").rglob("*")),
    ]
    for path in sources:
        if path.is_file():
            digest.update(str(path.relative_to(path.parents[1])).encode())
            digest.update(path.read_bytes())
    cached = cache_dir / f"infra-{digest.hexdigest()[:16]}.pickle"
    try:
        infra = pickle.loads(cached.read_bytes())
        if isinstance(infra, Infra) and infra.root == root:
            return infra
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    infra = load_infra(root, region=region, account_id=account_id)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob("infra-*.pickle"):
        stale.unlink(missing_ok=True)
    cached.write_bytes(pickle.dumps(infra))
    return infra


def _table(tf: Terraform, block: Block) -> TableSpec:
    attributes = {
        a["name"]: a["type"] for a in tf.eval(tf.sub_blocks(block, "attribute"), block.file)
    }
    gsis = tf.eval(tf.sub_blocks(block, "global_secondary_index"), block.file)
    for gsi in gsis:
        for key in ("hash_key", "range_key"):
            if key in gsi and gsi[key] not in attributes:
                raise InfraError(
                    f"{block.file.name}: {block.address}: index {gsi['name']} key "
                    f"{gsi[key]!r} has no attribute block"
                )
    return TableSpec(
        name=tf.attr(block, "name"),
        hash_key=tf.attr(block, "hash_key"),
        range_key=tf.attr(block, "range_key"),
        attributes=attributes,
        global_secondary_indexes=gsis,
        stream_view_type=tf.attr(block, "stream_view_type")
        if tf.attr(block, "stream_enabled")
        else None,
    )


def _reference(
    tf: Terraform, block: Block, attr: str, expression: Any, what: str = "a resource"
) -> Block:
    """The resource ``expression`` (the value of ``block.attr``) refers to; a clear error if none."""
    target = tf.referenced(expression)
    if target is None:
        raise InfraError(f"{block.file.name}: {block.address}.{attr} must reference {what}")
    return target


def _mapping(tf: Terraform, block: Block) -> MappingSpec:
    def target(attr: str) -> Block:
        return _reference(tf, block, attr, block.body.get(attr))

    settings_keys = {
        "starting_position": "StartingPosition",
        "batch_size": "BatchSize",
        "maximum_batching_window_in_seconds": "MaximumBatchingWindowInSeconds",
        "parallelization_factor": "ParallelizationFactor",
        "bisect_batch_on_function_error": "BisectBatchOnFunctionError",
        "maximum_retry_attempts": "MaximumRetryAttempts",
        "maximum_record_age_in_seconds": "MaximumRecordAgeInSeconds",
        "function_response_types": "FunctionResponseTypes",
        "enabled": "Enabled",
    }
    settings = {aws: tf.attr(block, hcl) for hcl, aws in settings_keys.items() if hcl in block.body}
    queue = None
    for dest in tf.sub_blocks(block, "destination_config"):
        for on_failure in dest.get("on_failure", []):
            destination = on_failure.get("destination_arn")
            queue = tf.attr(_reference(tf, block, "destination_config", destination), "name")
    return MappingSpec(
        tf.attr(target("function_name"), "function_name"),
        tf.attr(target("event_source_arn"), "name"),
        settings,
        queue,
    )


def _role_name(tf: Terraform, block: Block) -> str:
    role = _reference(tf, block, "role", block.body.get("role"), "an aws_iam_role")
    return str(tf.attr(role, "name"))


def _scaling(tf: Terraform) -> list[ScalingSpec]:
    """Each target-tracking policy with its scalable target (other policy types are skipped)."""
    specs = []
    targets = {tf.attr(t, "resource_id"): t for t in tf.of_type("aws_appautoscaling_target")}
    for policy in tf.of_type("aws_appautoscaling_policy"):
        if tf.attr(policy, "policy_type", "StepScaling") != "TargetTrackingScaling":
            continue
        resource_id = tf.attr(policy, "resource_id")
        target = targets.get(resource_id)
        if target is None:
            raise InfraError(
                f"{policy.file.name}: {policy.address}: no aws_appautoscaling_target for "
                f"{resource_id!r}"
            )
        (config,) = tf.eval(
            tf.sub_blocks(policy, "target_tracking_scaling_policy_configuration"), policy.file
        ) or [{}]
        (metric,) = config.get("predefined_metric_specification") or [{}]
        specs.append(
            ScalingSpec(
                resource_id=resource_id,
                min_capacity=int(tf.attr(target, "min_capacity")),
                max_capacity=int(tf.attr(target, "max_capacity")),
                policy_name=tf.attr(policy, "name"),
                target_value=float(config.get("target_value", 0)),
                metric_type=str(metric.get("predefined_metric_type", "")),
                scale_out_cooldown_s=float(config.get("scale_out_cooldown", 300)),
                scale_in_cooldown_s=float(config.get("scale_in_cooldown", 300)),
                disable_scale_in=bool(config.get("disable_scale_in", False)),
                service_namespace=tf.attr(target, "service_namespace"),
                scalable_dimension=tf.attr(target, "scalable_dimension"),
            )
        )
    return specs


def _target_group_for_service(tf: Terraform) -> Block | None:
    service = next(tf.of_type("aws_ecs_service"), None)
    if service is None:
        return None
    for lb in tf.sub_blocks(service, "load_balancer"):
        target_group = tf.referenced(lb.get("target_group_arn"))
        if target_group is not None:
            return target_group
    return None


def _policy_document(tf: Terraform, block: Block) -> str:
    statements = []
    for raw in tf.eval(tf.sub_blocks(block, "statement"), block.file):
        statement: dict[str, Any] = {"Effect": raw.get("effect", "Allow")}
        if "sid" in raw:
            statement["Sid"] = raw["sid"]
        statement["Action"] = raw.get("actions", [])
        if "resources" in raw:
            statement["Resource"] = raw["resources"]
        for principal in raw.get("principals", []):
            statement.setdefault("Principal", {})[principal["type"]] = principal["identifiers"]
        for condition in raw.get("condition", []):
            statement.setdefault("Condition", {}).setdefault(condition["test"], {})[
                condition["variable"]
            ] = condition["values"]
        statements.append(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _computed(infra: Infra, tf: Terraform, block: Block, attr: str) -> Any:
    """Attributes known only after apply, as AWS would name them for this region and account."""
    region, account = infra.region, infra.account_id
    if block.type == "aws_iam_policy_document" and attr == "json":
        return _policy_document(tf, block)
    if block.type == "aws_caller_identity" and attr == "account_id":
        return account
    name = tf.attr(block, "name") or tf.attr(block, "function_name")
    arns = {
        "aws_dynamodb_table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
        "aws_sqs_queue": f"arn:aws:sqs:{region}:{account}:{name}",
        "aws_cloudwatch_log_group": f"arn:aws:logs:{region}:{account}:log-group:{name}",
        "aws_lambda_function": f"arn:aws:lambda:{region}:{account}:function:{name}",
        "aws_iam_role": f"arn:aws:iam::{account}:role/{name}",
    }
    if attr == "arn" and block.type in arns:
        return arns[block.type]
    if attr == "id" and block.type == "aws_iam_role":
        return name
    if attr == "stream_arn" and block.type == "aws_dynamodb_table":
        return f"{arns['aws_dynamodb_table']}/stream/*"
    raise InfraError(f"{block.address}.{attr} is only known after apply")


def _reserved(value: object) -> int | None:
    """Terraform's ``reserved_concurrent_executions``: -1 (its default) means unreserved."""
    number = int(str(value))
    return None if number < 0 else number
