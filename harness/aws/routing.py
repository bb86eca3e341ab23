"""What an endpoint request is, before anyone serves it: the paths the harness answers itself
(health, reset, data.json, mappings, ECS delegation, faults), the SigV4 signing scope of a request,
and the DynamoDB tables a write request changed (so stream pollers are woken)."""

from __future__ import annotations

import json
import re

from harness.aws.moto_app import HttpRequest

ESM_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/event-source-mappings(?:/[^/]*)?/?$")
ESM_TAGS_PATH = re.compile(r"^/2017-03-31/tags/(?P<arn>arn:[^/]+:event-source-mapping:[^/]+)/?$")
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9.-]+)/aws4_request")
DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
PARTIQL_TABLE = re.compile(r'(?i)\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([A-Za-z0-9_.-]+)"?')
HEALTH_PATHS = ("/_localstack/health", "/_harness/health")
RESET_PATH = "/moto-api/reset"
ACCOUNT_HEADER = "x-moto-account-id"  # moto's way to name the account of a request
DATA_PATH = "/moto-api/data.json"
# ECS requests are delegated to the stack's scheduler (harness.ecs.api) once it registers here;
# it forwards what moto stores back with ECS_DIRECT_HEADER. POST {"url": ...} / DELETE.
ECS_DELEGATE_PATH = "/_harness/ecs-delegate"
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
ECS_DIRECT_HEADER = "x-harness-ecs-direct"
FAULTS_PATH = "/_harness/faults"  # harness.faults' control API
SERVICES = (
    "dynamodb",
    "dynamodbstreams",
    "iam",
    "sqs",
    "logs",
    "apigateway",
    "ecs",
    "elbv2",
    "lambda",
    "sts",
)


def signing_scope(request: HttpRequest) -> tuple[str, str, str] | None:
    """(access key id, region, service) from a SigV4 Authorization header, if signed."""
    match = CREDENTIAL.search(request.header("authorization", "") or "")
    return (match.group(1), match.group(2), match.group(3)) if match else None


def written_tables(action: str, body: bytes) -> list[str]:
    """The DynamoDB tables a successful write request changed."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    if action in ("PutItem", "UpdateItem", "DeleteItem"):
        return [str(document.get("TableName", ""))]
    if action == "BatchWriteItem":
        return [str(name) for name in document.get("RequestItems", {})]
    if action == "TransactWriteItems":
        return [
            str(op.get("TableName", ""))
            for entry in document.get("TransactItems", [])
            for op in entry.values()
            if isinstance(op, dict)
        ]
    statements = [document.get("Statement", "")]
    statements += [s.get("Statement", "") for s in document.get("Statements", [])]
    statements += [s.get("Statement", "") for s in document.get("TransactStatements", [])]
    return [m for s in statements for m in PARTIQL_TABLE.findall(str(s))]
