"""Parsing of an API Gateway OpenAPI document: routes, integrations and the resource policy."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ApiDefinition", "GatewayDefinitionError", "ResourcePolicy", "Route"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
ANY_METHOD = "x-amazon-apigateway-any-method"
VPC_KEYS = ("aws:sourcevpc", "aws:sourcevpce")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class GatewayDefinitionError(ValueError):
    """The API definition cannot be served (says which field is wrong)."""


@dataclass(frozen=True)
class Route:
    """One (resource, method) of the API and its http_proxy integration."""

    resource: str
    method: str  # upper case, or ANY
    uri_path: str
    integration_method: str
    timeout_ms: int
    path_mapping: dict[str, str] = field(default_factory=dict)  # integration name -> method name

    def rank(self) -> tuple[int, ...]:
        """Sort key: literal segments beat {param}, which beats {proxy+}; exact beats ANY."""
        kinds = [
            2 if s.endswith("+}") else 1 if s.startswith("{") else 0 for s in _split(self.resource)
        ]
        return (*kinds, 1 if self.method == "ANY" else 0)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Path parameters if ``segments`` fall under this resource, else None."""
        params: dict[str, str] = {}
        pattern = _split(self.resource)
        for i, part in enumerate(pattern):
            if part.endswith("+}"):
                if i >= len(segments):
                    return None
                params[part[1:-2]] = "/".join(segments[i:])
                return params
            if i >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[i]
            elif part != segments[i]:
                return None
        return params if len(pattern) == len(segments) else None

    def upstream_path(self, params: dict[str, str]) -> str:
        """The integration URI's path with path parameters filled in."""
        path = self.uri_path
        for name, value in params.items():
            target = next((k for k, v in self.path_mapping.items() if v == name), name)
            path = path.replace("{" + target + "+}", value).replace("{" + target + "}", value)
        return path


@dataclass(frozen=True)
class ResourcePolicy:
    """The API's resource policy; a source IP inside ``vpc_cidrs`` counts as the API's VPC."""

    statements: tuple[dict[str, Any], ...]

    def allows(self, resource: str, source_ip: str, vpc_cidrs: Iterable[IpNetwork]) -> bool:
        """IAM evaluation: an explicit Deny wins, otherwise an Allow is needed."""
        ip = _parse_ip(source_ip)
        inside = ip is not None and any(ip in net for net in vpc_cidrs if ip.version == net.version)
        applicable = [s for s in self.statements if self._applies(s, resource, ip, inside)]
        if any(s.get("Effect") == "Deny" for s in applicable):
            return False
        return any(s.get("Effect") == "Allow" for s in applicable)

    @staticmethod
    def _applies(statement: dict[str, Any], resource: str, ip: Any, inside: bool) -> bool:
        actions = [a.lower() for a in _as_list(statement.get("Action", "*"))]
        if not any(fnmatchcase("execute-api:invoke", a) for a in actions):
            return False
        if not any(fnmatchcase(resource, _relative(r)) for r in _as_list(statement["Resource"])):
            return False
        for operator, conditions in statement.get("Condition", {}).items():
            for key, values in conditions.items():
                if not _condition(operator, key.lower(), _as_list(values), ip, inside):
                    return False
        return True


@dataclass(frozen=True)
class ApiDefinition:
    """The routes and resource policy of an OpenAPI document with API Gateway extensions."""

    title: str
    routes: tuple[Route, ...]
    policy: ResourcePolicy | None

    @classmethod
    def load(cls, source: dict[str, Any] | Path | str) -> ApiDefinition:
        """Parse a document (dict or JSON file); GatewayDefinitionError names the bad field."""
        where = "API definition"
        if not isinstance(source, dict):
            where = str(source)
            try:
                source = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise GatewayDefinitionError(f"{where}: cannot read JSON: {exc}") from exc
        if not isinstance(source, dict) or not isinstance(source.get("paths"), dict):
            raise GatewayDefinitionError(f"{where}: 'paths' must be an object")
        routes = [
            _route(where, resource, key, operation)
            for resource, item in source["paths"].items()
            for key, operation in (item or {}).items()
            if key in METHODS or key == ANY_METHOD
        ]
        policy_doc = source.get("x-amazon-apigateway-policy")
        policy = None if policy_doc is None else _policy(where, policy_doc)
        title = str(source.get("info", {}).get("title", "api"))
        return cls(title, tuple(sorted(routes, key=Route.rank)), policy)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The most specific route for ``method`` and a stage-less ``path``.

        An empty segment (``/v1//query/fail``) is a segment of its own, as API Gateway keeps it:
        no resource has an empty name, so nothing matches (403 Missing Authentication Token).
        """
        if "//" in path:
            return None
        segments = _split(path)
        for route in self.routes:  # sorted most specific first
            if route.method in (method, "ANY"):
                params = route.match(segments)
                if params is not None:
                    return route, params
        return None


def _route(where: str, resource: str, key: str, operation: Any) -> Route:
    name = f"{where}: paths.{resource}.{key}"
    integration = (operation or {}).get("x-amazon-apigateway-integration")
    if not isinstance(integration, dict):
        raise GatewayDefinitionError(f"{name}: missing x-amazon-apigateway-integration")
    if str(integration.get("type", "")).lower() != "http_proxy":
        raise GatewayDefinitionError(
            f"{name}: integration type {integration.get('type')!r} is "
            "not served locally (only http_proxy)"
        )
    if "uri" not in integration:
        raise GatewayDefinitionError(f"{name}: integration has no 'uri'")
    timeout = integration.get("timeoutInMillis", 29000)
    if not isinstance(timeout, int) or timeout < 50:
        raise GatewayDefinitionError(f"{name}: timeoutInMillis must be an integer >= 50")
    mapping = {
        k.rsplit(".", 1)[1]: v.rsplit(".", 1)[1]
        for k, v in integration.get("requestParameters", {}).items()
        if k.startswith("integration.request.path.") and v.startswith("method.request.path.")
    }
    method = "ANY" if key == ANY_METHOD else key.upper()
    return Route(
        resource,
        method,
        urlsplit(str(integration["uri"])).path or "/",
        str(integration.get("httpMethod", method)).upper(),
        timeout,
        mapping,
    )


def _policy(where: str, document: Any) -> ResourcePolicy:
    if isinstance(document, str):
        document = json.loads(document)
    statements = tuple(_as_list(document.get("Statement", [])))
    for i, statement in enumerate(statements):
        name = f"{where}: x-amazon-apigateway-policy.Statement[{i}]"
        if statement.get("Effect") not in ("Allow", "Deny") or "Resource" not in statement:
            raise GatewayDefinitionError(f"{name}: needs Effect Allow|Deny and a Resource")
        for operator, conditions in statement.get("Condition", {}).items():
            for key in conditions:
                if operator not in _OPERATORS or key.lower() not in (*VPC_KEYS, "aws:sourceip"):
                    raise GatewayDefinitionError(
                        f"{name}: condition {operator} {key} is not supported locally"
                    )
    return ResourcePolicy(statements)


_OPERATORS = ("StringEquals", "StringNotEquals", "IpAddress", "NotIpAddress")


def _condition(operator: str, key: str, values: list[str], ip: Any, inside: bool) -> bool:
    if key in VPC_KEYS:  # a caller inside the local "VPC" carries the VPC the policy names
        return inside if operator == "StringEquals" else not inside
    in_range = ip is not None and any(
        ip in ipaddress.ip_network(v, strict=False)
        for v in values
        if ipaddress.ip_network(v, strict=False).version == ip.version
    )
    return in_range if operator == "IpAddress" else not in_range


def _relative(resource: str) -> str:
    """``execute-api:/v1/GET/x`` or ``arn:...:api-id/v1/GET/x`` -> ``v1/GET/x``."""
    if resource.startswith("execute-api:/"):
        return resource[len("execute-api:/") :]
    return resource.split("/", 1)[1] if "/" in resource else resource


def _split(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
