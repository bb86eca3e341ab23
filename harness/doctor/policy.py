"""Just enough IAM policy evaluation to say whether a role's policies allow an action on a resource.

As IAM evaluates identity policies: an explicit Deny wins, then any Allow, else the implicit deny.
Action names match case-insensitively with ``*`` and ``?`` wildcards; resources match ARNs with the
same wildcards, case-sensitively. Conditions are not evaluated (a statement with a Condition is
taken as applying, and the finding says so), nor are permission boundaries or SCPs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

__all__ = ["Decision", "PolicyDocument", "evaluate", "parse_document"]

PolicyDocument = dict[str, Any]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    statement: str | None  # the Sid (or index) of the deciding statement
    conditional: bool = False  # the deciding statement has a Condition we did not evaluate


def parse_document(document: str | PolicyDocument) -> PolicyDocument:
    """A policy document as IAM's API returns it (URL-encoded JSON, JSON, or already a dict)."""
    if isinstance(document, dict):
        return document
    text = document if document.lstrip().startswith("{") else unquote(document)
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("a policy document is a JSON object")
    return parsed


@lru_cache(maxsize=512)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _matches(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        if not any(_pattern(a, True).match(action) for a in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_pattern(a, True).match(action) for a in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(_pattern(r, False).match(resource) for r in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(
            _pattern(r, False).match(resource) for r in _listed(statement["NotResource"])
        )
    return False


def evaluate(documents: list[PolicyDocument], action: str, resource: str) -> Decision:
    """Whether the identity policies ``documents`` allow ``action`` on ``resource``."""
    allow: Decision | None = None
    for document in documents:
        for index, statement in enumerate(_listed_statements(document)):
            if not _matches(statement, action, resource):
                continue
            sid = str(statement.get("Sid") or f"statement {index + 1}")
            conditional = "Condition" in statement
            if statement.get("Effect") == "Deny" and not conditional:
                return Decision(False, sid)
            if statement.get("Effect") == "Allow" and allow is None:
                allow = Decision(True, sid, conditional)
    return allow or Decision(False, None)


def _listed_statements(document: PolicyDocument) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)
