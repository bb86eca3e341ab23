"""What an AWS request asks IAM for: the action (``service:Operation``) and the resource ARNs.

IAM authorises a request against the resource its action acts on, as the Service Authorization
Reference lists it per action; moto 5.2.5 supplies one only for SQS, IAM and STS
(``_determine_resource()``), so the endpoint works it out here from the request:

- DynamoDB: ``arn:aws:dynamodb:<region>:<account>:table/<TableName>``, ``.../index/<IndexName>``
  when a Query or Scan names an index, the stream ARN for DescribeStream/GetShardIterator
  (``StreamArn``) and GetRecords (the stream the iterator belongs to); a batch or transaction asks
  for each table it touches. ListTables and ListStreams have no resource-level permissions: ``*``.
- SQS: ``arn:aws:sqs:<region>:<account>:<queue>`` from ``QueueUrl`` (or ``QueueName``).
- CloudWatch Logs: the log-stream ARN ``arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:
  <stream>`` for stream actions (CreateLogStream, PutLogEvents...), else the log group's
  ``...:log-group:<group>:*`` (the form the CloudWatch Logs guide says IAM policies use).
- Lambda Invoke: ``arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`` (the Lambda
  guide, "Fine-tuning the Resources and Conditions sections of policies": function, version or
  alias ARN).
- STS AssumeRole: the role ARN. Anything else: ``*``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from harness.aws.moto_app import HttpRequest

__all__ = ["IamRequest", "describe"]

#: a signing name that is not the IAM prefix of its actions
IAM_PREFIX = {"monitoring": "cloudwatch", "execute-api": "execute-api"}
INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/(?:invocations|invoke-async)/?$")
LAMBDA_NAME = re.compile(
    r"^(?:arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:)?"
    r"(?:(?P<account2>\d{12}):function:)?(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[^:]+))?$"
)
DYNAMODB_SCOPELESS = frozenset({"ListTables", "ListStreams", "DescribeLimits", "DescribeEndpoints"})
LOG_STREAM_ACTIONS = frozenset({"CreateLogStream", "PutLogEvents", "GetLogEvents", "DeleteLogStream"})


@dataclass(frozen=True)
class IamRequest:
    """One request as IAM sees it."""

    action: str  # e.g. "dynamodb:Query"; "" when it cannot be told
    resources: tuple[str, ...]
    json_protocol: bool  # errors go back as JSON with __type


def describe(request: HttpRequest, service: str, region: str, account: str) -> IamRequest:
    """The action and resources of ``request`` signed for ``service`` (the SigV4 scope's)."""
    prefix = IAM_PREFIX.get(service, service)
    target = request.header("x-amz-target")
    params: dict[str, Any]
    if (match := INVOKE.match(request.path)) and request.method == "POST":
        return IamRequest(
            "lambda:InvokeFunction", (_function_arn(match.group("name"), request, region, account),),
            False,
        )
    if target:
        operation = target.rsplit(".", 1)[-1]
        params = _json(request.body)
    elif (request.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
        params = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        operation = str(params.get("Action", ""))
    else:
        return IamRequest("", ("*",), False)
    if not operation:
        return IamRequest("", ("*",), target is not None)
    action = f"{prefix}:{operation}"
    scope = f"{region}:{account}"
    resources: list[str] = ["*"]
    if prefix == "dynamodb":
        resources = _dynamodb(operation, params, scope) or ["*"]
    elif prefix == "sqs":
        resources = _sqs(params, scope)
    elif prefix == "logs":
        resources = _logs(operation, params, scope)
    elif prefix == "sts" and params.get("RoleArn"):
        resources = [str(params["RoleArn"])]
    return IamRequest(action, tuple(dict.fromkeys(resources)), target is not None)


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _table(name: Any, scope: str) -> str:
    text = str(name)
    return text if text.startswith("arn:") else f"arn:aws:dynamodb:{scope}:table/{text}"


def _dynamodb(operation: str, params: dict[str, Any], scope: str) -> list[str]:
    if operation in DYNAMODB_SCOPELESS:
        return ["*"]
    if "StreamArn" in params:
        return [str(params["StreamArn"])]
    if "ShardIterator" in params:  # moto's iterator: "<stream ARN>|1|<id>"
        return [str(params["ShardIterator"]).split("|", 1)[0]]
    if "TableName" in params:
        table = _table(params["TableName"], scope)
        index = params.get("IndexName")
        return [f"{table}/index/{index}" if index else table]
    if isinstance(params.get("RequestItems"), dict):
        return [_table(name, scope) for name in params["RequestItems"]]
    found = []
    for entry in params.get("TransactItems", []):
        if isinstance(entry, dict):
            found += [
                _table(op["TableName"], scope)
                for op in entry.values()
                if isinstance(op, dict) and "TableName" in op
            ]
    return found


def _sqs(params: dict[str, Any], scope: str) -> list[str]:
    if url := params.get("QueueUrl"):
        parts = [p for p in urlparse(str(url)).path.split("/") if p]
        if len(parts) >= 2:
            region = scope.split(":", 1)[0]
            return [f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"]
    if name := params.get("QueueName"):
        return [f"arn:aws:sqs:{scope}:{name}"]
    return ["*"]


def _logs(operation: str, params: dict[str, Any], scope: str) -> list[str]:
    group = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not group:
        return ["*"]
    text = str(group)
    if text.startswith("arn:"):
        text = text.split(":log-group:", 1)[-1].removesuffix(":*")
    base = f"arn:aws:logs:{scope}:log-group:{text}"
    if operation in LOG_STREAM_ACTIONS and params.get("logStreamName"):
        return [f"{base}:log-stream:{params['logStreamName']}"]
    return [f"{base}:*"]


def _function_arn(name: str, request: HttpRequest, region: str, account: str) -> str:
    match = LAMBDA_NAME.match(unquote(name))
    if match is None:
        return f"arn:aws:lambda:{region}:{account}:function:{unquote(name)}"
    qualifier = match.group("qualifier") or parse_qs(request.query_string.decode()).get(
        "Qualifier", [None]
    )[0]
    arn = (
        f"arn:aws:lambda:{match.group('region') or region}:"
        f"{match.group('account') or match.group('account2') or account}:"
        f"function:{match.group('name')}"
    )
    return f"{arn}:{qualifier}" if qualifier else arn
