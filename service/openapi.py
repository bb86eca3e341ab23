"""Write or check the committed OpenAPI contract: `python -m service.openapi [--check]`.

`contracts/openapi.yaml` is the service's generated OpenAPI (V3). The V2 contract beside it is a
frozen record of the API before this release; it is never regenerated, so comparing V2 with V3
shows every change V3 makes (see `query-harness contract diff`).
"""

from __future__ import annotations

import argparse
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
    return {V3_FILE: generate_v3()}


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
