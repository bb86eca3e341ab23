"""Breaking-change report between two OpenAPI documents, with declared changes.

No maintained Python OpenAPI diff tool exists, so this is a small checker for the kinds of
change our contract can have: removed or renamed paths and operations, request fields that
became required or were removed, response fields removed or retyped, narrowed request enums and
widened response enums. Declared changes (``contracts/declared-changes.yaml``) carry a reason
each and do not fail ``--strict``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class FieldInfo:
    """What a checker needs to know of one schema property."""

    types: frozenset[str]
    required: bool
    enum: frozenset[Any] | None


@dataclass(frozen=True)
class Change:
    """One difference between the old and the new document."""

    kind: str
    subject: str
    where: tuple[str, ...] = ()
    breaking: bool = False
    detail: str = ""

    @property
    def id(self) -> str:
        """Stable identifier used by the declared-changes file."""
        return f"{self.kind}:{self.subject}"


@dataclass
class Declaration:
    """A change the release declares on purpose, with its reason."""

    id: str
    reason: str
    rename: tuple[str, str] | None = None


@dataclass
class DiffReport:
    """The changes found, split by whether they were declared."""

    changes: list[Change]
    declared: dict[str, Declaration] = field(default_factory=dict)

    @property
    def undeclared_breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking and c.id not in self.declared]

    @property
    def unused_declarations(self) -> list[Declaration]:
        seen = {c.id for c in self.changes}
        return [d for d in self.declared.values() if d.id not in seen]

    def lines(self) -> list[str]:
        """Human-readable report, one change per line, then a summary."""
        out: list[str] = []
        for c in self.changes:
            if c.id in self.declared:
                label = "declared"
            else:
                label = "BREAKING" if c.breaking else "ok"
            where = f"  [{', '.join(c.where)}]" if c.where else ""
            detail = f": {c.detail}" if c.detail else ""
            line = f"{label:<9} {c.kind.replace('-', ' ')} {c.subject}{detail}{where}"
            if c.id in self.declared:
                line += f"  — {self.declared[c.id].reason}"
            out.append(line)
        for d in self.unused_declarations:
            out.append(f"STALE     declared change {d.id} does not occur — {d.reason}")
        n_decl = sum(1 for c in self.changes if c.id in self.declared)
        n_ok = sum(1 for c in self.changes if not c.breaking and c.id not in self.declared)
        out.append(
            f"{len(self.undeclared_breaking)} undeclared breaking, {n_decl} declared, "
            f"{n_ok} non-breaking, {len(self.unused_declarations)} stale declaration(s)"
        )
        return out

    @property
    def ok_strict(self) -> bool:
        return not self.undeclared_breaking and not self.unused_declarations


#: The declarations file's format (``contracts/declared-changes.yaml``); a file that is not one
#: is an error, never an empty set of declarations.
DECLARATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["changes"],
    "additionalProperties": False,
    "properties": {
        "changes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason"],
                "additionalProperties": False,
                "oneOf": [{"required": ["rename"]}, {"required": ["id"]}],
                "properties": {
                    "reason": {"type": "string", "minLength": 1},
                    "id": {"type": "string", "pattern": "^[a-z-]+:.+"},
                    "rename": {
                        "type": "object",
                        "required": ["from", "to"],
                        "additionalProperties": False,
                        "properties": {
                            "from": {"type": "string", "pattern": "^/"},
                            "to": {"type": "string", "pattern": "^/"},
                        },
                    },
                },
            },
        }
    },
}


def _load_yaml(path: Path, what: str) -> Any:
    """The YAML (or JSON) in ``path``; a ValueError naming the file when it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the {what} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"{path}: the {what} is not YAML or JSON{where}: {problem}") from None


def load_document(path: Path) -> dict[str, Any]:
    """Load an OpenAPI document from YAML or JSON."""
    data = _load_yaml(path, "OpenAPI document")
    if not isinstance(data, dict) or "paths" not in data:
        raise ValueError(f"{path}: not an OpenAPI document (no 'paths')")
    paths = data["paths"]
    if not isinstance(paths, dict) or not all(
        isinstance(item, dict) for item in paths.values()
    ):
        raise ValueError(f"{path}: 'paths' must map each path to its operations")
    return data


def load_declarations(path: Path) -> dict[str, Declaration]:
    """Read declared changes: ``rename: {from, to}`` or ``id: kind:subject``, each with a reason."""
    from jsonschema import Draft202012Validator

    raw = _load_yaml(path, "declarations file")
    problems = sorted(
        Draft202012Validator(DECLARATIONS_SCHEMA).iter_errors(raw), key=lambda e: list(e.path)
    )
    if problems:
        first = problems[0]
        where = "/".join(str(p) for p in first.path) or "the file"
        raise ValueError(
            f"{path}: not a declarations file ({where}: {first.message}); expected "
            "'changes:' with entries 'rename: {from, to}' or 'id: kind:subject', each with a reason"
        )
    out: dict[str, Declaration] = {}
    for entry in raw["changes"]:
        if "rename" in entry:
            old, new = entry["rename"]["from"], entry["rename"]["to"]
            decl = Declaration(f"path-renamed:{old} -> {new}", entry["reason"], (old, new))
        else:
            decl = Declaration(str(entry["id"]), entry["reason"])
        out[decl.id] = decl
    return out


def diff(
    old: dict[str, Any], new: dict[str, Any], declared: Mapping[str, Declaration] | None = None
) -> DiffReport:
    """Compare two OpenAPI documents; declared renames pair the old path with the new one."""
    declared = dict(declared or {})
    renames = {d.rename[0]: d.rename[1] for d in declared.values() if d.rename}
    old_paths, new_paths = old.get("paths", {}), new.get("paths", {})
    changes: list[Change] = []
    pairs: list[tuple[str, str]] = []
    for path in old_paths:
        target = renames.get(path)
        if path in new_paths:
            pairs.append((path, path))
        elif target is not None and target in new_paths:
            changes.append(Change("path-renamed", f"{path} -> {target}", breaking=True))
            pairs.append((path, target))
        else:
            changes.append(Change("path-removed", path, breaking=True))
    paired_new = {n for _, n in pairs}
    changes += [Change("path-added", p) for p in new_paths if p not in paired_new]
    collected: dict[tuple[str, str, bool, str], list[str]] = {}
    for old_path, new_path in pairs:
        for change in _diff_path(old, new, old_path, new_path):
            key = (change.kind, change.subject, change.breaking, change.detail)
            collected.setdefault(key, []).extend(change.where)
    for (kind, subject, breaking, detail), where in collected.items():
        changes.append(Change(kind, subject, tuple(where), breaking, detail))
    return DiffReport(changes, declared)


def _diff_path(
    old: dict[str, Any], new: dict[str, Any], old_path: str, new_path: str
) -> Iterator[Change]:
    old_item, new_item = old["paths"][old_path], new["paths"][new_path]
    for method in HTTP_METHODS:
        if method not in old_item and method not in new_item:
            continue
        op = f"{method.upper()} {new_path}"
        if method not in new_item:
            yield Change("operation-removed", f"{method.upper()} {old_path}", breaking=True)
            continue
        if method not in old_item:
            yield Change("operation-added", op)
            continue
        old_req = _request_fields(old, old_item[method])
        new_req = _request_fields(new, new_item[method])
        yield from _compare_fields(old_req, new_req, op, request=True)
        old_resp = _response_fields(old, old_item[method])
        new_resp = _response_fields(new, new_item[method])
        for status in sorted(old_resp.keys() - new_resp.keys()):
            if status.startswith("2"):
                yield Change("response-removed", status, (op,), breaking=True)
        for status in sorted(old_resp.keys() & new_resp.keys()):
            yield from _compare_fields(
                old_resp[status], new_resp[status], f"{op} {status}", request=False
            )


def _compare_fields(
    old: dict[str, FieldInfo], new: dict[str, FieldInfo], where: str, *, request: bool
) -> Iterator[Change]:
    side = "request" if request else "response"
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is None and after is not None:
            if request and after.required:
                yield Change("required-request-field-added", name, (where,), True)
            else:
                optional = "optional " if not after.required or "null" in after.types else ""
                yield Change(f"{optional}{side}-field-added".replace(" ", "-"), name, (where,))
        elif after is None and before is not None:
            yield Change(f"{side}-field-removed", name, (where,), True)
        elif before is not None and after is not None:
            yield from _compare_field(before, after, name, where, request=request)


def _compare_field(
    before: FieldInfo, after: FieldInfo, name: str, where: str, *, request: bool
) -> Iterator[Change]:
    side = "request" if request else "response"
    if before.types != after.types and before.types and after.types:
        # A request may accept more types; a response may promise fewer.
        narrowed = not before.types <= after.types if request else not after.types <= before.types
        detail = f"{_fmt(before.types)} -> {_fmt(after.types)}"
        yield Change(f"{side}-field-retyped", name, (where,), narrowed, detail)
    if request and after.required and not before.required:
        yield Change("request-field-now-required", name, (where,), True)
    if not request and before.required and not after.required:
        yield Change("response-field-now-optional", name, (where,), True)
    if before.enum is not None and after.enum is not None and before.enum != after.enum:
        lost, gained = before.enum - after.enum, after.enum - before.enum
        if request and lost:
            yield Change("request-enum-narrowed", name, (where,), True, f"removed {_fmt(lost)}")
        if not request and gained:
            yield Change("response-enum-widened", name, (where,), True, f"added {_fmt(gained)}")


def _fmt(values: frozenset[Any]) -> str:
    return "|".join(sorted(str(v) for v in values))


def _request_fields(doc: dict[str, Any], operation: Schema) -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = {}
    for param in operation.get("parameters", []):
        param = _resolve(doc, param)
        info = _info(doc, param.get("schema", {}), bool(param.get("required")))
        fields[f"{param.get('in', '?')}:{param.get('name')}"] = info
    body = _resolve(doc, operation.get("requestBody", {}))
    schema = body.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        fields.update(_flatten(doc, schema, "", set()))
    return fields


def _response_fields(doc: dict[str, Any], operation: Schema) -> dict[str, dict[str, FieldInfo]]:
    out: dict[str, dict[str, FieldInfo]] = {}
    for status, response in operation.get("responses", {}).items():
        response = _resolve(doc, response)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        out[str(status)] = _flatten(doc, schema, "", set()) if schema is not None else {}
    return out


def _flatten(
    doc: dict[str, Any], schema: Schema, prefix: str, seen: set[str]
) -> dict[str, FieldInfo]:
    """Map each nested property (``.records[].ap_id``) to its types, required flag and enum."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return {}
        return _flatten(doc, _resolve(doc, schema), prefix, seen | {ref})
    out: dict[str, FieldInfo] = {}
    for member in [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]:
        out.update(_flatten(doc, member, prefix, seen))
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        out[path] = _info(doc, sub, name in required)
        out.update(_flatten(doc, sub, path, seen))
    items = schema.get("items")
    if isinstance(items, Mapping):
        out.update(_flatten(doc, items, f"{prefix}[]", seen))
    return out


def _info(doc: dict[str, Any], schema: Schema, required: bool) -> FieldInfo:
    types: set[str] = set()
    enum: set[Any] | None = None
    for part in _alternatives(doc, schema, set()):
        kind = part.get("type")
        if isinstance(kind, list):
            types.update(kind)
        elif isinstance(kind, str):
            types.add(kind)
        if part.get("nullable"):
            types.add("null")
        if "enum" in part:
            enum = (enum or set()) | {v for v in part["enum"] if v is not None}
        if "const" in part:
            enum = (enum or set()) | {part["const"]}
    return FieldInfo(frozenset(types), required, frozenset(enum) if enum is not None else None)


def _alternatives(doc: dict[str, Any], schema: Schema, seen: set[str]) -> Iterator[Schema]:
    ref = schema.get("$ref")
    if ref is not None:
        if ref not in seen:
            yield from _alternatives(doc, _resolve(doc, schema), seen | {ref})
        return
    yield schema
    for member in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
        yield from _alternatives(doc, member, seen)


def _resolve(doc: dict[str, Any], node: Schema) -> Schema:
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    target: Any = doc
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(doc, target)
