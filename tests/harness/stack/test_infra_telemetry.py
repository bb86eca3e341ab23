"""What the AWS side of the service reads from infra/: scaling, ALB names, the access-log group."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.stack.infra import ROOT, ScalingSpec, load_infra
from harness.stack.terraform import InfraError


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    return tmp_path


def test_load_infra_reads_the_target_tracking_policy_and_its_target() -> None:
    infra = load_infra(region="ap-southeast-1", account_id="000000000000")
    (scaling,) = infra.scaling
    cluster, service = infra.cluster_name, infra.service_definition["serviceName"]
    assert scaling == ScalingSpec(
        resource_id=f"service/{cluster}/{service}",
        min_capacity=2,
        max_capacity=6,
        policy_name="query-service-cpu-target-tracking",
        target_value=60.0,
        metric_type="ECSServiceAverageCPUUtilization",
        scale_out_cooldown_s=60.0,
        scale_in_cooldown_s=120.0,
    )
    assert (infra.load_balancer_name, infra.target_group_name) == (
        "query-service-alb",
        "query-service-tg",
    )
    assert infra.api_access_log_group is None  # infra/ defines none today


def test_load_infra_policy_without_a_scalable_target_is_a_clear_error(infra_copy: Path) -> None:
    main = infra_copy / "infra" / "terraform" / "main.tf"
    text = main.read_text()
    policy_id = "resource_id        = aws_appautoscaling_target.query_service.resource_id"
    assert policy_id in text
    main.write_text(text.replace(policy_id, 'resource_id = "service/other/other"'))
    with pytest.raises(InfraError, match="no aws_appautoscaling_target for"):
        load_infra(infra_copy)


def test_load_infra_reads_the_stage_access_log_group(infra_copy: Path) -> None:
    api = infra_copy / "infra" / "terraform" / "api-gateway.tf"
    text = api.read_text()
    stage = "  stage_name    = local.api_stage_name\n"
    assert stage in text
    api.write_text(
        text.replace(
            stage,
            stage + "  access_log_settings {\n"
            "    destination_arn = aws_cloudwatch_log_group.api_access.arn\n"
            '    format          = "$context.requestId"\n  }\n',
        )
        + '\nresource "aws_cloudwatch_log_group" "api_access" {\n'
        '  name = "/aws/apigateway/query-service-access"\n}\n'
    )
    infra = load_infra(infra_copy)
    assert infra.api_access_log_group == "/aws/apigateway/query-service-access"
    assert "/aws/apigateway/query-service-access" in infra.log_groups
