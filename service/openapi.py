"""Write or check the committed OpenAPI contracts: `python -m service.openapi [--check]`.

`contracts/openapi.yaml` is the service's generated OpenAPI (V3). `contracts/openapi-v2.yaml` is
the API as it was before V3, derived from V3 by undoing exactly the V3 changes (the failure query
at `/query/failure` with its `/failed` alias, and no `ap_id`), so a V2→V3 diff shows only those.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from service.app import create_app
from service.invoker import QueryLambdaRequest
from service.models import QueryResponse
from service.settings import Settings

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
V3_FILE = "openapi.yaml"
V2_FILE = "openapi-v2.yaml"
V2_VERSION = "2.0.0"

Document = dict[str, Any]


class _NoInvoker:
    """Stands in for the Lambda when only the schema is wanted."""

    def invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        """Never called while generating the schema."""
        raise NotImplementedError


def generate_v3() -> Document:
    """The OpenAPI document of the current service, as plain JSON data."""
    app = create_app(Settings(), invoker=_NoInvoker())
    document: Document = json.loads(json.dumps(app.openapi()))
    return document


def derive_v2(v3: Document) -> Document:
    """The V2 contract: V3 with `/query/fail` back at `/query/failure` + `/failed`, no `ap_id`."""
    v2 = copy.deepcopy(v3)
    v2["info"]["version"] = V2_VERSION
    paths: dict[str, Any] = {}
    for path, item in v2["paths"].items():
        if path != "/query/fail":
            paths[path] = item
            continue
        failure = copy.deepcopy(item)
        failure["post"]["operationId"] = "queryFailure"
        alias = copy.deepcopy(item)
        alias["post"]["operationId"] = "queryFailed"
        alias["post"]["summary"] = "Alias of /query/failure"
        paths["/query/failure"] = failure
        paths["/failed"] = alias
    v2["paths"] = paths
    record = v2["components"]["schemas"]["NotificationRecord"]
    record["properties"].pop("ap_id", None)
    record["required"] = [name for name in record.get("required", []) if name != "ap_id"]
    return v2


def to_yaml(document: Document) -> str:
    """Render a document the way the committed contracts are written."""
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return text


def load(path: Path) -> Document:
    """Read a committed contract."""
    document: Document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def diff(expected: Document, actual: Document, expected_name: str, actual_name: str) -> str:
    """A unified diff of two documents' YAML renderings (empty when they are equal)."""
    return "".join(
        difflib.unified_diff(
            to_yaml(expected).splitlines(keepends=True),
            to_yaml(actual).splitlines(keepends=True),
            fromfile=expected_name,
            tofile=actual_name,
        )
    )


def expected_documents() -> dict[str, Document]:
    """File name → the document that file must hold."""
    v3 = generate_v3()
    return {V3_FILE: v3, V2_FILE: derive_v2(v3)}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the contracts, or with --check report (exit 1) any that are out of date."""
    parser = argparse.ArgumentParser(prog="python -m service.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--dir", type=Path, default=CONTRACTS_DIR, help="contracts directory")
    args = parser.parse_args(argv)
    stale = 0
    for name, document in expected_documents().items():
        path: Path = args.dir / name
        if not args.check:
            path.write_text(to_yaml(document), encoding="utf-8")
            print(f"wrote {path}")
            continue
        if not path.exists():
            print(f"{path} is missing; run `python -m service.openapi`", file=sys.stderr)
            stale += 1
            continue
        changes = diff(load(path), document, str(path), "generated")
        if changes:
            print(changes, file=sys.stderr)
            print(f"{path} is out of date; run `python -m service.openapi`", file=sys.stderr)
            stale += 1
        else:
            print(f"{path} is up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
