"""The import rules of ARCHITECTURE.md, enforced by reading every module's imports (no import runs).

Each rule names a package (or module) and the import prefixes it must not use. Imports inside
functions count as much as top-level ones; ``if TYPE_CHECKING:`` imports count too, since a rule
is about which part may know which.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVERS = ("uvicorn", "starlette", "fastapi", "flask", "werkzeug", "http.server", "socketserver")
HARNESS_PARTS = (
    "harness.aws",
    "harness.lambda_runtime",
    "harness.streams",
    "harness.ingress",
    "harness.ecs",
    "harness.stack",
    "harness.contracts",
    "harness.readside",
    "harness.cli",
    "harness.faults",
    "harness.pytest_plugin",
    "harness.doctor",
    "harness.verify",
    "harness.cloudwatch",
    "harness.autoscaling",
    "harness.iam",
)

#: package or module -> import prefixes it must not use
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "service": ("harness", "lambdas"),
    "lambdas": ("harness", "service"),
    "harness.ingress": (
        "moto", "boto3", "botocore",
        *(p for p in HARNESS_PARTS if p != "harness.ingress"),
    ),
    "harness.streams": (
        "moto", *SERVERS,
        *(p for p in HARNESS_PARTS if p != "harness.streams"),
    ),
    "harness.lambda_runtime": (
        "harness.streams", "harness.ingress", "harness.stack", "harness.contracts", "harness.cli",
        "harness.faults", "harness.pytest_plugin",
    ),
    "harness.faults": (
        "moto", *SERVERS,
        *(p for p in HARNESS_PARTS if p not in ("harness.faults", "harness.lambda_runtime")),
    ),
    "harness.aws": ("harness.stack", "harness.contracts", "harness.cli", "harness.pytest_plugin"),
    "harness.stack": ("moto", "harness.cli", "harness.contracts", "harness.pytest_plugin"),
    "harness.doctor": (
        "moto", *SERVERS, "harness.aws", "harness.lambda_runtime", "harness.streams",
        "harness.ingress", "harness.contracts", "harness.cli", "harness.pytest_plugin",
    ),
    "harness.readside": (
        "moto", "httpx", *SERVERS,
        *(p for p in HARNESS_PARTS if p != "harness.readside"),
    ),
    "harness.verify": ("moto", "harness.cli", "harness.pytest_plugin"),
    "harness.ecs": (
        "moto", "boto3", "botocore",
        *(p for p in HARNESS_PARTS if p not in ("harness.ecs", "harness.ingress")),
    ),
    "harness.contracts": (
        "moto", "boto3", "botocore", "httpx", *SERVERS,
        *(p for p in HARNESS_PARTS if p not in ("harness.contracts", "harness.stack")),
    ),
    # the control plane's parts are handed boto3 clients and callables; they import no other part
    "harness.cloudwatch": (
        "moto", "boto3", "botocore", *SERVERS,
        *(p for p in HARNESS_PARTS if p != "harness.cloudwatch"),
    ),
    "harness.autoscaling": (  # it reads CloudWatch: harness.cloudwatch is its one other part
        "moto", "boto3", "botocore", *SERVERS,
        *(p for p in HARNESS_PARTS if p not in ("harness.autoscaling", "harness.cloudwatch")),
    ),
    "harness.iam": (
        "moto", "boto3", "botocore", *(s for s in SERVERS if s != "http.server"),
        *(p for p in HARNESS_PARTS if p != "harness.iam"),
    ),
}
#: the only modules that may import moto
MOTO_ALLOWED = ("harness.aws", "harness.lambda_runtime.api")
#: runs inside the function's own interpreter: the standard library only
STDLIB_ONLY = (
    "harness.lambda_runtime.worker",
    "harness.lambda_runtime.forkserver_process",
    "harness.lambda_runtime.forkserver_warm",
    "harness.lambda_runtime.forkserver_child",
)
#: modules allowed directly under harness/ (public entry points); every other module sits in a part
FLAT_ALLOWED = {"__init__", "__main__", "pytest_plugin", "pytest_entry", "endpoint"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str) -> list[tuple[int, str]]:
    """Every absolute module name the source imports, with its line."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            # `from harness import stack` imports harness.stack
            names.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str) -> list[str]:
    """The import-rule breaches of one module, as ``module:line imports name (rule)``."""
    found: list[str] = []
    for line, name in imported_names(source):
        for owner, prefixes in FORBIDDEN.items():
            if not within(module, owner):
                continue
            for prefix in prefixes:
                if within(name, prefix):
                    found.append(f"{module}:{line} imports {name} ({owner} must not import {prefix})")
        if within(name, "moto") and not any(within(module, ok) for ok in MOTO_ALLOWED):
            found.append(f"{module}:{line} imports {name} (only {', '.join(MOTO_ALLOWED)} import moto)")
        if module in STDLIB_ONLY:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "__future__":
                found.append(f"{module}:{line} imports {name} ({module} uses the standard library only)")
    return found


def sources() -> list[Path]:
    return sorted(p for d in ("harness", "service", "lambdas") for p in (ROOT / d).rglob("*.py"))


def test_layout_every_module_keeps_the_import_rules() -> None:
    found = [v for path in sources() for v in violations(module_name(path), path.read_text())]
    assert found == [], "\n".join(found)


def test_layout_harness_has_only_entry_points_at_top_level() -> None:
    flat = sorted(p.stem for p in (ROOT / "harness").glob("*.py") if p.stem not in FLAT_ALLOWED)
    assert flat == [], f"modules belong in the package of their part: {flat}"


def test_layout_every_part_says_what_it_is() -> None:
    for init in (ROOT / "harness").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring saying what the part is"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("harness.ingress.gateway", "import boto3\n", "harness.ingress.gateway:1 imports boto3"),
        ("harness.ingress.gateway", "from harness.stack import state\n", "imports harness.stack.state"),
        ("harness.streams.poller", "def f():\n    import uvicorn\n", "harness.streams.poller:2 imports uvicorn"),
        ("harness.stack.stack", "from moto import mock_aws\n", "only harness.aws"),
        ("harness.lambda_runtime.worker", "import psutil\n", "standard library only"),
        ("service.app", "from harness import cli\n", "service must not import harness"),
        ("lambdas.query.handler", "import service.app\n", "lambdas must not import service"),
        ("harness.cloudwatch.metrics", "import boto3\n", "harness.cloudwatch must not import boto3"),
        ("harness.autoscaling.controller", "from harness.stack import infra\n", "must not import harness.stack"),
    ],
)
def test_layout_checker_reports_a_breach(module: str, source: str, expected: str) -> None:
    assert any(expected in v for v in violations(module, source)), violations(module, source)


def test_layout_checker_allows_what_the_rules_allow() -> None:
    assert violations("harness.aws.patches", "import moto.dynamodb\nfrom harness.streams import batch\n") == []
    assert violations("harness.lambda_runtime.worker", "import json, os, sys\n") == []
