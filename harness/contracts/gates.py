"""Cross-layer contract gates: the gateway, the Lambda, the schemas and the Terraform agree with
``contracts/openapi.yaml``. Each gate returns the problems it found, worded for a reviewer; an empty
list means the gate passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.stack.infra import ROOT

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
OLD_PATHS = ("/query/failure", "/failed")
#: Files that may name the V2 paths: the V2 contract itself and the declaration of the rename.
OLD_PATH_ALLOWED = {"contracts/openapi-v2.yaml", "contracts/declared-changes.yaml"}


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an OpenAPI document."""
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def gateway_routes_match_contract(
    api_definition: dict[str, Any], contract: dict[str, Any], stage: str
) -> list[str]:
    """The API Gateway definition serves exactly the contract's operations, each proxied to its path."""
    problems = []
    routes, wanted = operations(api_definition), operations(contract)
    for method, path in sorted(wanted - routes):
        problems.append(
            f"contract operation {method} /{stage}{path} has no route in internal-api.json"
        )
    for method, path in sorted(routes - wanted):
        problems.append(
            f"internal-api.json routes {method} /{stage}{path}, which the contract does not define"
        )
    for method, path in sorted(routes & wanted):
        integration = api_definition["paths"][path][method.lower()].get(
            "x-amazon-apigateway-integration"
        )
        if not integration:
            problems.append(
                f"internal-api.json {method} {path} has no x-amazon-apigateway-integration"
            )
            continue
        uri = str(integration.get("uri", ""))
        if not uri.endswith(path):
            problems.append(f"internal-api.json {method} {path} forwards to {uri!r}, not to {path}")
        if str(integration.get("httpMethod", method)).upper() != method:
            problems.append(
                f"internal-api.json {method} {path} forwards as {integration.get('httpMethod')}"
            )
    return problems


def lambda_query_types_match_contract(
    request_schema: dict[str, Any], contract: dict[str, Any]
) -> list[str]:
    """The query Lambda accepts exactly one query type per ``POST /query/<type>`` of the contract."""
    accepted = set(request_schema["properties"]["query_type"]["enum"])
    wanted = {
        path.removeprefix("/query/")
        for method, path in operations(contract)
        if method == "POST" and path.startswith("/query/")
    }
    problems = [
        f"the contract has POST /query/{t} but the query Lambda does not accept query_type {t!r}"
        for t in sorted(wanted - accepted)
    ]
    problems += [
        f"the query Lambda accepts query_type {t!r}, which has no POST /query/{t} in the contract"
        for t in sorted(accepted - wanted)
    ]
    return problems


def ap_id_in_contract(contract: dict[str, Any]) -> list[str]:
    """Every query response's records carry ``ap_id``: present (required) and string-or-null."""
    schemas = contract.get("components", {}).get("schemas", {})
    record = schemas.get("NotificationRecord")
    if record is None:
        return ["the contract has no NotificationRecord schema"]
    problems = []
    ap_id = record.get("properties", {}).get("ap_id")
    if ap_id is None:
        return ["NotificationRecord has no ap_id property (V3 adds it to every record)"]
    if "ap_id" not in record.get("required", []):
        problems.append(
            "NotificationRecord.ap_id is not required: responses must always carry it (null when absent)"
        )
    types = {alt.get("type") for alt in ap_id.get("anyOf", [ap_id])}
    if types != {"string", "null"}:
        problems.append(
            f"NotificationRecord.ap_id must be string or null, the contract says {sorted(map(str, types))}"
        )
    for method, path in sorted(operations(contract)):
        if not path.startswith("/query/"):
            continue
        ok = contract["paths"][path][method.lower()]["responses"].get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        items = schemas.get(name, {}).get("properties", {}).get("records", {}).get("items", {})
        if items.get("$ref") != "#/components/schemas/NotificationRecord":
            problems.append(f"{method} {path} 200 records are not NotificationRecord")
    return problems


def ap_id_in_record_schemas(schema_dir: Path) -> list[str]:
    """The record JSON Schemas carry an optional, nullable ``ap_id``."""
    problems = []
    for name in ("command-record", "notification-record"):
        schema = json.loads((schema_dir / f"{name}.schema.json").read_text(encoding="utf-8"))
        ap_id = schema.get("properties", {}).get("ap_id")
        if ap_id is None:
            problems.append(f"{name}.schema.json has no ap_id")
        elif "null" not in json.dumps(ap_id):
            problems.append(f"{name}.schema.json: ap_id must allow null (pre-V3 records have none)")
    return problems


def old_paths_absent(files: Iterable[Path], root: Path = ROOT) -> list[str]:
    """No file outside the V2 contract names ``/query/failure`` or ``/failed`` (as a path)."""
    pattern = re.compile(r"/query/failure\b|(?<![\w/])/failed\b")
    problems = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        if relative in OLD_PATH_ALLOWED:
            continue
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if pattern.search(line):
                problems.append(f"{relative}:{number}: names a V2 path: {line.strip()[:120]}")
    return problems


def definition_files(root: Path = ROOT) -> list[Path]:
    """The contracts, infra definitions and product sources the rename must have reached."""
    patterns = [
        "contracts/**/*.yaml",
        "contracts/**/*.json",
        "infra/**/*.json",
        "infra/**/*.tf",
        "service/**/*.py",
        "lambdas/**/*.py",
        "lambdas/**/*.json",
        "scripts/*.sh",
    ]
    return sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
