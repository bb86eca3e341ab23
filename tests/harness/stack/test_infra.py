"""Reading infra/: the Terraform (python-hcl2 plus our expression evaluator) and the JSON files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.stack.infra import ROOT, load_infra
from harness.stack.terraform import InfraError, Terraform


@pytest.fixture(scope="module")
def infra():
    return load_infra(region="ap-southeast-1", account_id="000000000000")


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    return tmp_path


def test_load_infra_tables_match_the_design(infra) -> None:
    command = infra.table("command-records")
    assert (command.hash_key, command.range_key) == ("transaction_id", "created_at")
    assert command.stream_view_type == "NEW_AND_OLD_IMAGES"
    read = infra.table("notification-records")
    assert {g["name"] for g in read.global_secondary_indexes} == {
        "marketing_id-index",
        "transaction_id-status-index",
    }
    assert read.stream_view_type is None


def test_load_infra_functions_carry_handler_and_environment(infra) -> None:
    functions = {f.name: f for f in infra.functions}
    assert functions["query-lambda"].handler == "lambdas.query.handler.lambda_handler"
    assert (
        functions["stream-processor"].environment["NOTIFICATION_TABLE_NAME"]
        == "notification-records"
    )
    assert functions["query-lambda"].role_name in {r.name for r in infra.roles}


def test_load_infra_mapping_reads_settings_and_destination(infra) -> None:
    (mapping,) = infra.mappings
    assert (mapping.function_name, mapping.source_table) == ("stream-processor", "command-records")
    assert mapping.settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.settings["BisectBatchOnFunctionError"] is True
    assert mapping.on_failure_queue in infra.queues


def test_load_infra_roles_render_policy_documents_with_arns(infra) -> None:
    roles = {r.name: r for r in infra.roles}
    task_role = next(r for r in roles.values() if "task-role" in r.name or r.name.endswith("task"))
    (policy,) = task_role.inline_policies.values()
    assert policy["Statement"][0]["Resource"] == [
        "arn:aws:lambda:ap-southeast-1:000000000000:function:query-lambda"
    ]
    assert all(
        r.assume_role_policy["Statement"][0]["Action"] == ["sts:AssumeRole"] for r in roles.values()
    )


def test_load_infra_service_settings_come_from_ecs_and_target_group(infra) -> None:
    assert infra.service_definition["desiredCount"] == 2
    assert infra.container_environment["QUERY_LAMBDA_NAME"] == "query-lambda"
    assert infra.container_port == 8000
    assert infra.health_check.path == "/health"
    assert infra.api_stage == "v1"
    assert "/aws/lambda/query-lambda" in infra.log_groups


def test_load_infra_reserved_concurrency_only_where_set(infra, infra_copy: Path) -> None:
    assert {f.reserved_concurrency for f in infra.functions} == {None}
    main = infra_copy / "infra" / "terraform" / "main.tf"
    main.write_text(
        main.read_text().replace(
            "  memory_size      = 256\n", "  memory_size      = 256\n  reserved_concurrent_executions = 7\n", 1
        )
    )
    functions = {f.name: f for f in load_infra(infra_copy).functions}
    assert functions["query-lambda"].reserved_concurrency == 7
    assert functions["stream-processor"].reserved_concurrency is None


def test_load_infra_invalid_hcl_names_the_file(infra_copy: Path) -> None:
    bad = infra_copy / "infra" / "terraform" / "main.tf"
    bad.write_text(bad.read_text() + '\nresource "aws_sqs_queue" {{{\n')
    with pytest.raises(InfraError, match="main.tf: not valid HCL"):
        load_infra(infra_copy)


def test_load_infra_missing_json_field_names_file_and_field(infra_copy: Path) -> None:
    path = infra_copy / "infra" / "ecs" / "service-definition.json"
    path.write_text(path.read_text().replace('"desiredCount"', '"desired"'))
    with pytest.raises(InfraError, match=r"service-definition.json: missing field 'desiredCount'"):
        load_infra(infra_copy)


def test_load_infra_invalid_json_names_the_line(infra_copy: Path) -> None:
    path = infra_copy / "infra" / "api-gateway" / "internal-api.json"
    path.write_text('{\n  "paths": ,\n}')
    with pytest.raises(InfraError, match=r"internal-api.json: invalid JSON at line 2"):
        load_infra(infra_copy)


def test_terraform_templates_and_functions_evaluate(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text('{"a": {"b": ["x", "y"]}}')
    (tmp_path / "main.tf").write_text(
        'variable "prefix" {\n  default = "qs"\n}\n'
        'locals {\n  doc = jsondecode(file("${path.module}/doc.json"))\n'
        '  name = "${var.prefix}-${local.doc.a.b[1]}"\n  esc = "$${literal}"\n}\n'
    )
    tf = Terraform(tmp_path)
    assert tf.reference(["local", "name"], tmp_path) == "qs-y"
    assert tf.reference(["local", "esc"], tmp_path) == "${literal}"


def test_terraform_unsupported_function_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('locals {\n  x = cidrsubnet("10.0.0.0/16", 8, 1)\n}\n')
    with pytest.raises(InfraError, match=r"cidrsubnet\(\) is not supported"):
        Terraform(tmp_path).reference(["local", "x"], tmp_path)


def test_load_infra_cached_reuses_until_a_file_changes(infra_copy: Path, tmp_path: Path) -> None:
    from harness.stack.infra import load_infra_cached

    cache = tmp_path / "cache"
    first = load_infra_cached(infra_copy, region="ap-southeast-1", account_id="1", cache_dir=cache)
    (pickled,) = cache.glob("infra-*.pickle")
    again = load_infra_cached(infra_copy, region="ap-southeast-1", account_id="1", cache_dir=cache)
    assert again == first and list(cache.glob("infra-*.pickle")) == [pickled]
    path = infra_copy / "infra" / "ecs" / "service-definition.json"
    path.write_text(path.read_text().replace('"desiredCount": 2', '"desiredCount": 3'))
    changed = load_infra_cached(
        infra_copy, region="ap-southeast-1", account_id="1", cache_dir=cache
    )
    assert changed.service_definition["desiredCount"] == 3
    assert len(list(cache.glob("infra-*.pickle"))) == 1


def test_load_infra_function_role_that_is_no_reference_names_the_field(infra_copy: Path) -> None:
    main = infra_copy / "infra" / "terraform" / "main.tf"
    text = main.read_text()
    main.write_text(
        text.replace(
            "role             = aws_iam_role.query_lambda.arn", 'role             = "x"', 1
        )
    )
    assert main.read_text() != text
    with pytest.raises(
        InfraError, match=r"aws_lambda_function.query.role must reference an aws_iam_role"
    ):
        load_infra(infra_copy)
