"""Helpers for the infra tests: the infra/ files, parsed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TERRAFORM = INFRA / "terraform"
TF_FILES = sorted(TERRAFORM.glob("*.tf"))


@cache
def terraform(name: str) -> dict[str, Any]:
    """Parse infra/terraform/<name>.tf with python-hcl2 (quotes stripped, plain blocks)."""
    options = SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    with (TERRAFORM / f"{name}.tf").open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=options)


def blocks(kind: str, type_name: str) -> dict[str, dict[str, Any]]:
    """Every `kind "type_name" "label"` block (kind: resource or data) across the .tf files."""
    found: dict[str, dict[str, Any]] = {}
    for path in TF_FILES:
        for entry in terraform(path.stem).get(kind, []):
            for label, body in entry.get(type_name, {}).items():
                found[label] = body
    return found


def resources(type_name: str) -> dict[str, dict[str, Any]]:
    """Every resource of a type, by label."""
    return blocks("resource", type_name)


def variable_default(name: str) -> Any:
    for path in TF_FILES:
        for entry in terraform(path.stem).get("variable", []):
            if name in entry:
                return entry[name].get("default")
    raise KeyError(name)


def load_json(relative: str) -> Any:
    return json.loads((INFRA / relative).read_text(encoding="utf-8"))
