"""The Terraform: parseable by python-hcl2, names as DESIGN.md, least privilege, defined once."""

from __future__ import annotations

import importlib
import json
from typing import Any

import hcl2
import pytest

from tests.infra.conftest import INFRA, TERRAFORM, TF_FILES, blocks, resources, variable_default


def walk(value: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere inside a parsed document."""
    found = []
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == key:
                found.append(inner)
            found.extend(walk(inner, key))
    elif isinstance(value, list):
        for inner in value:
            found.extend(walk(inner, key))
    return found


def flat(values: list[Any]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


def policy_actions(document_label: str) -> set[str]:
    document = blocks("data", "aws_iam_policy_document")[document_label]
    return set(flat(walk(document["statement"], "actions")))


def is_wildcard(action: str) -> bool:
    return action == "*" or action.endswith(":*") or "*" in action


def test_terraform_files_are_the_four_expected():
    assert [p.name for p in TF_FILES] == ["api-gateway.tf", "iam.tf", "main.tf", "outputs.tf"]


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.name)
def test_terraform_file_parses_with_python_hcl2(path):
    with path.open(encoding="utf-8") as handle:
        document = hcl2.load(handle)

    assert document


def test_iam_has_no_wildcard_action():
    actions = []
    for path in TF_FILES:
        with path.open(encoding="utf-8") as handle:
            actions += flat(walk(hcl2.load(handle), "actions"))
    api_policy = json.loads((INFRA / "api-gateway" / "internal-api.json").read_text())
    actions += flat(walk(api_policy, "Action"))

    assert actions
    assert [a for a in actions if is_wildcard(a.strip('"'))] == []


def test_wildcard_check_catches_service_wildcard():
    assert is_wildcard("dynamodb:*") and is_wildcard("*") and is_wildcard("s3:Get*")
    assert not is_wildcard("dynamodb:Query")


def test_task_role_may_only_invoke_the_query_lambda():
    statements = blocks("data", "aws_iam_policy_document")["ecs_task"]["statement"]

    assert policy_actions("ecs_task") == {"lambda:InvokeFunction"}
    assert statements[0]["resources"] == ["${aws_lambda_function.query.arn}"]


def test_query_lambda_may_only_read_the_read_table():
    assert policy_actions("query_lambda") == {
        "dynamodb:Query",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    resources_text = json.dumps(blocks("data", "aws_iam_policy_document")["query_lambda"])
    assert "command_records" not in resources_text


def test_stream_processor_may_only_write_read_table_read_stream_and_send_to_dlq():
    assert policy_actions("stream_processor") == {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_tables_keys_streams_and_indexes_as_designed():
    tables = {body["name"]: body for body in resources("aws_dynamodb_table").values()}
    command, read = tables["command-records"], tables["notification-records"]

    assert (command["hash_key"], command["range_key"]) == ("transaction_id", "created_at")
    assert command["stream_enabled"] is True
    assert command["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert (read["hash_key"], read["range_key"]) == ("user_id", "created_at")
    indexes = {i["name"]: (i["hash_key"], i["range_key"]) for i in read["global_secondary_index"]}
    assert indexes == {
        "marketing_id-index": ("marketing_id", "created_at"),
        "transaction_id-status-index": ("transaction_id", "status"),
    }
    types = {a["name"]: a["type"] for a in read["attribute"]}
    assert types == {
        "user_id": "S",
        "created_at": "N",
        "marketing_id": "S",
        "transaction_id": "S",
        "status": "S",
    }


def test_lambda_functions_name_importable_handlers():
    functions = {body["function_name"]: body for body in resources("aws_lambda_function").values()}

    assert set(functions) == {"query-lambda", "stream-processor"}
    assert functions["query-lambda"]["handler"] == "lambdas.query.handler.lambda_handler"
    expected = "lambdas.stream_processor.handler.lambda_handler"
    assert functions["stream-processor"]["handler"] == expected
    for body in functions.values():
        module, _, attribute = body["handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))
        assert body["runtime"] == "python3.12"
        assert 1 <= body["timeout"] <= 900 and 128 <= body["memory_size"] <= 10240
        variables = body["environment"][0]["variables"]
        assert variables["NOTIFICATION_TABLE_NAME"] == (
            "${aws_dynamodb_table.notification_records.name}"
        )


def test_stream_mapping_has_aws_retry_and_partial_batch_settings():
    mapping = resources("aws_lambda_event_source_mapping")["command_records_stream"]

    assert mapping["function_name"] == "${aws_lambda_function.stream_processor.arn}"
    assert mapping["event_source_arn"] == "${aws_dynamodb_table.command_records.stream_arn}"
    assert mapping["batch_size"] == 100
    assert mapping["starting_position"] == "TRIM_HORIZON"
    assert 0 <= mapping["maximum_batching_window_in_seconds"] <= 300
    assert mapping["bisect_batch_on_function_error"] is True
    assert 0 <= mapping["maximum_retry_attempts"] <= 10000
    assert 60 <= mapping["maximum_record_age_in_seconds"] <= 604800
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    destination = mapping["destination_config"][0]["on_failure"][0]["destination_arn"]
    assert destination == "${aws_sqs_queue.stream_processor_dlq.arn}"
    assert resources("aws_sqs_queue")["stream_processor_dlq"]["name"] == "stream-processor-dlq"


def test_log_groups_for_both_functions_and_the_service():
    names = {body["name"] for body in resources("aws_cloudwatch_log_group").values()}

    assert {"/aws/lambda/query-lambda", "/aws/lambda/stream-processor"} <= names
    assert 'local.container.logConfiguration.options["awslogs-group"]' in " ".join(names)


def test_task_definition_is_read_from_the_json_file_once():
    main = (TERRAFORM / "main.tf").read_text()
    task = resources("aws_ecs_task_definition")["query_service"]

    assert main.count("../ecs/task-definition.json") == 1
    assert "local.task_definition.containerDefinitions" in task["container_definitions"]
    assert task["family"] == "${local.task_definition.family}"
    assert "8000" not in main and 'containerPort"' not in main


def test_api_body_is_read_from_the_json_file():
    api = resources("aws_api_gateway_rest_api")["internal"]
    text = (TERRAFORM / "api-gateway.tf").read_text()

    assert api["body"] == "${local.internal_api_body}"
    assert "../api-gateway/internal-api.json" in text
    assert api["endpoint_configuration"][0]["types"] == ["PRIVATE"]
    assert resources("aws_api_gateway_stage")["v1"]["stage_name"] == "${local.api_stage_name}"
    assert "/query/" not in text


def test_vpc_link_wiring_is_stated():
    text = (TERRAFORM / "api-gateway.tf").read_text()
    target_group = resources("aws_lb_target_group")["nlb_to_alb"]

    assert "VPC link V2" in text and "NLB" in text
    assert target_group["target_type"] == "alb"
    assert resources("aws_api_gateway_vpc_link")["nlb"]["target_arns"] == ["${aws_lb.nlb.arn}"]


def test_target_group_health_check_probes_health():
    check = resources("aws_lb_target_group")["query_service"]["health_check"][0]

    assert check["path"] == "/health"
    assert check["matcher"] == "200"
    assert check["interval"] > check["timeout"]
    assert check["healthy_threshold"] >= 2 and check["unhealthy_threshold"] >= 2


def test_service_and_autoscaling_follow_service_definition():
    service = resources("aws_ecs_service")["query_service"]
    target = resources("aws_appautoscaling_target")["query_service"]
    policy = resources("aws_appautoscaling_policy")["query_service_cpu"]
    tracking = policy["target_tracking_scaling_policy_configuration"][0]

    assert service["desired_count"] == "${local.service_definition.desiredCount}"
    assert service["service_registries"] and service["load_balancer"]
    assert target["min_capacity"] == "${var.service_min_count}"
    assert variable_default("service_min_count") == 2
    assert variable_default("service_max_count") > variable_default("service_min_count")
    assert policy["policy_type"] == "TargetTrackingScaling"
    metric = tracking["predefined_metric_specification"][0]["predefined_metric_type"]
    assert metric == "ECSServiceAverageCPUUtilization"
    assert 0 < variable_default("service_cpu_target") < 100


def test_default_region_is_ap_southeast_1():
    assert variable_default("aws_region") == "ap-southeast-1"


def test_outputs_cover_what_deploy_and_harness_need():
    outputs = {name for entry in blocks_outputs() for name in entry}

    assert {
        "ecs_cluster_name",
        "ecs_service_name",
        "query_lambda_name",
        "api_invoke_url",
    } <= outputs


def blocks_outputs() -> list[dict[str, Any]]:
    from tests.infra.conftest import terraform

    return terraform("outputs").get("output", [])
