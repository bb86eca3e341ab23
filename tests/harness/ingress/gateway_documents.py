"""What the gateway tests share: a small internal-api.json look-alike with the infra file's
http_proxy VPC_LINK integrations, the 403 body, and the echo upstream app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["MISSING_TOKEN", "REPO_API", "api_document", "create_echo_app", "integration"]

sys.path.insert(0, str(Path(__file__).parent / "apps"))
from echo_upstream import create_echo_app  # noqa: E402

REPO_API = Path(__file__).parents[3] / "infra" / "api-gateway" / "internal-api.json"
MISSING_TOKEN = {"message": "Missing Authentication Token"}


def integration(method: str, path: str, timeout_ms: int = 29000, **extra: Any) -> dict[str, Any]:
    """An operation with the http_proxy VPC_LINK integration the infra file uses."""
    return {
        "x-amazon-apigateway-integration": {
            "type": "http_proxy",
            "connectionType": "VPC_LINK",
            "connectionId": "${stageVariables.vpcLinkId}",
            "uri": "http://${stageVariables.albDnsName}" + path,
            "httpMethod": method,
            "passthroughBehavior": "when_no_match",
            "timeoutInMillis": timeout_ms,
            **extra,
        }
    }


def api_document(*, deny_outside_vpc: bool = True) -> dict[str, Any]:
    """A small internal-api.json look-alike."""
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
        },
    ]
    if deny_outside_vpc:
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-0abc"}},
            }
        )
    proxy = {"integration.request.path.proxy": "method.request.path.proxy"}
    return {
        "openapi": "3.0.1",
        "info": {"title": "query-service-internal-api", "version": "3.0.0"},
        "paths": {
            "/health": {"get": integration("GET", "/health")},
            "/query/user": {"post": integration("POST", "/query/user")},
            "/query/fail": {"post": integration("POST", "/query/fail")},
            "/slow/{ms}": {"get": integration("GET", "/slow/{ms}", timeout_ms=500)},
            "/status/{code}": {"get": integration("GET", "/status/{code}")},
            "/files/{proxy+}": {
                "x-amazon-apigateway-any-method": integration(
                    "ANY", "/mirror/{proxy}", requestParameters=proxy
                )
            },
        },
        "x-amazon-apigateway-policy": {"Version": "2012-10-17", "Statement": statements},
    }
