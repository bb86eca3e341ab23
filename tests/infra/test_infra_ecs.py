"""The ECS task and service definitions: valid for the ECS API and as DESIGN.md says."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from tests.infra.conftest import load_json, resources

ECS = botocore.session.get_session().get_service_model("ecs")
# Fargate's valid memory (MiB) for 256 CPU units.
FARGATE_256_MEMORY = {512, 1024, 2048}


def task_definition():
    return load_json("ecs/task-definition.json")


def service_definition():
    return load_json("ecs/service-definition.json")


def container():
    return task_definition()["containerDefinitions"][0]


def environment():
    return {v["name"]: v["value"] for v in container()["environment"]}


def test_task_definition_passes_register_task_definition_validation():
    shape = ECS.operation_model("RegisterTaskDefinition").input_shape

    validate_parameters(task_definition(), shape)


def test_task_definition_validation_catches_a_broken_definition():
    shape = ECS.operation_model("RegisterTaskDefinition").input_shape
    broken = task_definition()
    broken["containerDefinitions"][0]["portMappings"][0]["containerPort"] = "8000"

    with pytest.raises(ParamValidationError):
        validate_parameters(broken, shape)


def test_service_definition_passes_create_service_validation():
    validate_parameters(service_definition(), ECS.operation_model("CreateService").input_shape)


def test_task_definition_is_fargate_256_cpu_512_memory_awsvpc():
    document = task_definition()

    assert document["family"] == "query-service-task"
    assert (document["cpu"], document["memory"]) == ("256", "512")
    assert int(document["memory"]) in FARGATE_256_MEMORY
    assert document["networkMode"] == "awsvpc"
    assert document["requiresCompatibilities"] == ["FARGATE"]
    assert "executionRoleArn" in document and "taskRoleArn" in document


def test_container_port_environment_and_logs():
    definition = container()

    assert definition["name"] == "query-service"
    assert definition["portMappings"][0]["containerPort"] == 8000
    assert environment()["QUERY_LAMBDA_NAME"] == "query-lambda"
    assert environment()["AWS_REGION"] == "ap-southeast-1"
    assert environment()["PORT"] == str(definition["portMappings"][0]["containerPort"])
    assert definition["logConfiguration"]["logDriver"] == "awslogs"
    assert definition["logConfiguration"]["options"]["awslogs-group"] == "/ecs/query-service"


def test_container_health_check_probes_health_endpoint():
    check = container()["healthCheck"]

    assert check["command"][0] == "CMD-SHELL"
    assert "http://localhost:8000/health" in check["command"][1]
    assert 5 <= check["interval"] <= 300 and 2 <= check["timeout"] <= 60
    assert 1 <= check["retries"] <= 10 and 0 <= check["startPeriod"] <= 300
    assert check["timeout"] < check["interval"]


def test_service_definition_runs_two_tasks_with_rolling_update():
    document = service_definition()
    deployment = document["deploymentConfiguration"]

    assert document["desiredCount"] == 2
    assert document["launchType"] == "FARGATE"
    assert document["deploymentController"]["type"] == "ECS"
    assert (deployment["minimumHealthyPercent"], deployment["maximumPercent"]) == (50, 200)
    assert deployment["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert document["healthCheckGracePeriodSeconds"] > 0
    assert document["serviceRegistries"]
    assert document["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


def test_service_definition_load_balancer_matches_task_definition():
    target = service_definition()["loadBalancers"][0]

    assert target["containerName"] == container()["name"]
    assert target["containerPort"] == container()["portMappings"][0]["containerPort"]
    assert service_definition()["taskDefinition"] == task_definition()["family"]


def test_task_environment_names_the_terraform_query_lambda():
    functions = resources("aws_lambda_function")

    assert environment()["QUERY_LAMBDA_NAME"] == functions["query"]["function_name"]


def test_task_role_arns_name_the_terraform_roles():
    roles = resources("aws_iam_role")
    document = task_definition()

    assert document["executionRoleArn"].endswith(f":role/{roles['ecs_task_execution']['name']}")
    assert document["taskRoleArn"].endswith(f":role/{roles['ecs_task']['name']}")
