"""The control plane ``infra/`` defines, provisioned through boto3: the ECS cluster, task
definition and service, and the private REST API. The endpoint only describes them (the harness
serves them itself); each step looks first and creates only what is missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from harness.stack.infra import Infra

if TYPE_CHECKING:
    from harness.stack.provision import ProvisionResult

#: Reports a step: whether it created something, and what (``Provisioner._did``).
Did = Callable[[bool, str], None]

#: The deploy-time placeholders of the API's resource policy, as the local stack fills them: the
#: gateway treats sources in its VPC ranges as this VPC (see ``ingress.api_definition``).
LOCAL_VPC = {"${vpc_id}": "vpc-local", "${vpc_endpoint_id}": "vpce-local"}

TASK_DEFINITION_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "runtimePlatform",
)


def provision_cluster(ecs: Any, infra: Infra, did: Did) -> None:
    """The ECS cluster."""
    clusters = ecs.describe_clusters(clusters=[infra.cluster_name])["clusters"]
    if not any(c.get("status") == "ACTIVE" for c in clusters):
        ecs.create_cluster(clusterName=infra.cluster_name)
        did(True, f"ECS cluster {infra.cluster_name}")


def provision_task_definition(ecs: Any, infra: Infra, did: Did) -> None:
    """The task definition: a new revision when the latest ACTIVE one differs."""
    task = {k: v for k, v in infra.task_definition.items() if k in TASK_DEFINITION_KEYS}
    family = task["family"]
    # the latest ACTIVE revision, as DescribeTaskDefinition(family) answers on AWS (moto also
    # counts deregistered ones)
    active = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")
    revisions = sorted(active["taskDefinitionArns"], key=lambda a: int(a.rsplit(":", 1)[1]))
    try:
        latest = ecs.describe_task_definition(taskDefinition=(revisions or [family])[-1])[
            "taskDefinition"
        ]
        same = all(
            latest.get(k) == v for k, v in task.items() if k != "containerDefinitions"
        ) and len(latest.get("containerDefinitions", [])) == len(task["containerDefinitions"])
    except ClientError:
        same = False
    if not same:
        ecs.register_task_definition(**task)
    did(not same, f"task definition {family}")


def provision_service(ecs: Any, infra: Infra, did: Did) -> None:
    """The ECS service (after the cluster and the task definition it names)."""
    family = infra.task_definition["family"]
    service = infra.service_definition
    found = ecs.describe_services(
        cluster=infra.cluster_name, services=[service["serviceName"]]
    )["services"]
    if not any(s.get("status") == "ACTIVE" for s in found):
        ecs.create_service(
            cluster=infra.cluster_name,
            serviceName=service["serviceName"],
            taskDefinition=family,
            desiredCount=int(service["desiredCount"]),
            launchType=service.get("launchType", "FARGATE"),
        )
        did(True, f"ECS service {service['serviceName']}")
    else:
        did(False, f"ECS service {service['serviceName']}")


def provision_api(apigw: Any, infra: Infra, result: ProvisionResult, did: Did) -> None:
    """The private REST API and its stage; its id goes to ``result.rest_api_id``."""
    document = infra.api_document
    title = document["info"]["title"]
    apis = {a["name"]: a["id"] for a in apigw.get_rest_apis(limit=500)["items"]}
    created = title not in apis
    if created:
        # As AWS imports a private API: the endpoint type is an import parameter, the policy
        # comes from x-amazon-apigateway-policy. moto ignores both on import (it reads back
        # EDGE with no policy), so they are also set through UpdateRestApi, as AWS allows.
        apis[title] = apigw.import_rest_api(
            body=json.dumps(document).encode(),
            parameters={"endpointConfigurationTypes": "PRIVATE"},
        )["id"]
        apigw.update_rest_api(restApiId=apis[title], patchOperations=_private_api_patch(document))
    result.rest_api_id = apis[title]
    stages = {s["stageName"] for s in apigw.get_stages(restApiId=apis[title])["item"]}
    if infra.api_stage not in stages:
        apigw.create_deployment(restApiId=apis[title], stageName=infra.api_stage)
    did(created, f"REST API {title} (stage {infra.api_stage})")


def _private_api_patch(document: dict[str, Any]) -> list[dict[str, str]]:
    """UpdateRestApi operations that make an imported API private with its resource policy."""
    operations = [{"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "PRIVATE"}]
    policy = document.get("x-amazon-apigateway-policy")
    if policy is not None:
        text = json.dumps(policy)
        for placeholder, value in LOCAL_VPC.items():
            text = text.replace(placeholder, value)
        operations.append({"op": "replace", "path": "/policy", "value": text})
    return operations
