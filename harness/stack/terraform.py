"""Read the Terraform in ``infra/terraform`` with python-hcl2 and evaluate the expressions we use.

python-hcl2 parses the files; what it leaves as text is the expression language. This module
evaluates the small part of it that the infra files use — references (``var.``, ``local.``,
``path.module``, ``aws_x.y.attr``, ``data.x.y.attr``), indexing, string templates and the functions
``file``, ``jsondecode``, ``jsonencode``, ``replace``, ``merge`` and ``lower`` — and says exactly
what it cannot evaluate, with the file and the field, rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InfraError(ValueError):
    """An infra file is missing, invalid, or uses something the harness cannot evaluate."""


@dataclass(frozen=True)
class Block:
    """One ``resource`` or ``data`` block."""

    kind: str  # "resource" or "data"
    type: str
    name: str
    body: dict[str, Any]
    file: Path

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{prefix}{self.type}.{self.name}"


#: Resolves attributes Terraform only knows after apply (``arn``, ``stream_arn``, ``id`` ...).
Computed = Callable[[Block, str], Any]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][\w-]*)|(?P<punct>[.\[\](),]))"
)


class Terraform:
    """All blocks of a Terraform directory, with lazy expression evaluation."""

    def __init__(
        self,
        directory: Path,
        variables: dict[str, Any] | None = None,
        computed: Computed | None = None,
    ) -> None:
        self.directory = directory
        self.blocks: dict[str, Block] = {}
        self._locals: dict[str, tuple[Any, Path]] = {}
        self._variables: dict[str, Any] = {}
        self._computed = computed
        files = sorted(directory.glob("*.tf"))
        if not files:
            raise InfraError(f"{directory}: no Terraform files")
        for path in files:
            self._load(path)
        self._variables.update(variables or {})

    def _load(self, path: Path) -> None:
        import hcl2  # noqa: PLC0415 - lark is slow to import, and parsed infra is cached

        try:
            with path.open(encoding="utf-8") as handle:
                doc = hcl2.load(handle)
        except Exception as exc:  # python-hcl2 raises lark errors of several types
            raise InfraError(f"{path}: not valid HCL: {exc}") from exc
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    for rname, body in named.items():
                        block = Block(kind, _unquote(rtype), _unquote(rname), body, path)
                        self.blocks[block.address] = block
        for entry in doc.get("locals", []):
            for key, value in entry.items():
                if key != "__is_block__":
                    self._locals[key] = (value, path)
        for entry in doc.get("variable", []):
            for name, body in entry.items():
                self._variables[_unquote(name)] = self.eval(body.get("default"), path)

    def of_type(self, rtype: str, kind: str = "resource") -> Iterator[Block]:
        """Every block of one type, in file order."""
        return (b for b in self.blocks.values() if b.type == rtype and b.kind == kind)

    def one(self, rtype: str) -> Block:
        """The single resource of a type; an error names the type when there is none or several."""
        found = list(self.of_type(rtype))
        if len(found) != 1:
            raise InfraError(f"{self.directory}: expected one {rtype}, found {len(found)}")
        return found[0]

    def attr(self, block: Block, name: str, default: Any = None) -> Any:
        """Evaluate one attribute of a block."""
        if name not in block.body:
            return default
        try:
            return self.eval(block.body[name], block.file)
        except InfraError as exc:
            raise InfraError(f"{block.file.name}: {block.address}.{name}: {exc}") from exc

    def referenced(self, expression: Any) -> Block | None:
        """The resource an expression such as ``${aws_x.y.arn}`` refers to, or None."""
        if not isinstance(expression, str) or not expression.startswith("${"):
            return None
        address = ".".join(expression[2:].rstrip("}").split(".")[:2])
        return self.blocks.get(address)

    def sub_blocks(self, block: Block, name: str) -> list[dict[str, Any]]:
        """Nested blocks (``attribute {}``, ``environment {}``) of a block, unevaluated."""
        value = block.body.get(name, [])
        return value if isinstance(value, list) else [value]

    # ------------------------------------------------------------------ evaluation

    def eval(self, value: Any, where: Path) -> Any:
        """Evaluate an hcl2 value: templates, expressions, lists and maps."""
        if isinstance(value, list):
            return [self.eval(v, where) for v in value]
        if isinstance(value, dict):
            return {
                _unquote(k): self.eval(v, where) for k, v in value.items() if k != "__is_block__"
            }
        if not isinstance(value, str):
            return value
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return self._template(value[1:-1], where)
        if (
            value.startswith("${")
            and value.endswith("}")
            and _matching_brace(value, 1) == len(value) - 1
        ):
            return self._expression(value[2:-1], where)
        return value

    def _template(self, text: str, where: Path) -> Any:
        parts: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("$${", i):
                parts.append("${")
                i += 3
            elif text.startswith("${", i):
                end = _matching_brace(text, i + 1)
                result = self._expression(text[i + 2 : end], where)
                if i == 0 and end == len(text) - 1:
                    return result
                parts.append(str(result))
                i = end + 1
            else:
                parts.append(text[i])
                i += 1
        return "".join(parts).replace('\\"', '"').replace("\\\\", "\\")

    def _expression(self, source: str, where: Path) -> Any:
        parser = _Parser(source, self, where)
        result = parser.expr()
        parser.expect_end()
        return result

    def reference(self, path: list[str | int], where: Path) -> Any:
        """Resolve a reference such as ``var.x``, ``local.y[0]``, ``aws_t.n.attr``."""
        head = path[0]
        if head == "var":
            return _index(self._variables, path[1:], path)
        if head == "local":
            name = str(path[1])
            if name not in self._locals:
                raise InfraError(f"unknown local.{name}")
            value, file = self._locals[name]
            return _index(self.eval(value, file), path[2:], path)
        if head == "path" and path[1:2] == ["module"]:
            return str(self.directory.resolve())
        address = ".".join(str(p) for p in path[:3]) if head == "data" else f"{head}.{path[1]}"
        rest = path[3:] if head == "data" else path[2:]
        block = self.blocks.get(address)
        if block is None:
            raise InfraError(f"unknown reference {address}")
        attr = str(rest[0]) if rest else ""
        if attr in block.body:
            return _index(self.attr(block, attr), rest[1:], path)
        if self._computed is None:
            raise InfraError(f"{address}.{attr} is only known after apply")
        return _index(self._computed(block, attr), rest[1:], path)


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _matching_brace(text: str, open_at: int) -> int:
    depth, i, in_string = 0, open_at, False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InfraError(f"unbalanced braces in {text!r}")


def _index(value: Any, keys: list[str | int], path: list[str | int]) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise InfraError(f"cannot evaluate {'.'.join(map(str, path))}: no {key!r}") from exc
    return value


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "jsondecode": json.loads,
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "replace": lambda s, old, new: str(s).replace(old, new),
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
    "lower": lambda s: str(s).lower(),
}


class _Parser:
    """Recursive descent over the expression subset described in the module docstring."""

    def __init__(self, source: str, tf: Terraform, where: Path) -> None:
        self.src, self.pos, self.tf, self.where = source, 0, tf, where

    def _peek(self) -> str:
        rest = self.src[self.pos :].lstrip()
        return rest[:1]

    def _skip_ws(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos].isspace():
            self.pos += 1

    def expect_end(self) -> None:
        self._skip_ws()
        if self.pos != len(self.src):
            raise InfraError(
                f"cannot evaluate expression {self.src!r} (at {self.src[self.pos :]!r})"
            )

    def _take(self, char: str) -> None:
        self._skip_ws()
        if not self.src.startswith(char, self.pos):
            raise InfraError(f"expected {char!r} in {self.src!r}")
        self.pos += 1

    def expr(self) -> Any:
        self._skip_ws()
        if self._peek() == '"':
            return self._postfix(self._string())
        if self._peek() == "[":
            self._take("[")
            items = []
            while self._peek() != "]":
                items.append(self.expr())
                if self._peek() == ",":
                    self._take(",")
            self._take("]")
            return items
        match = _TOKEN.match(self.src, self.pos)
        if match is None:
            raise InfraError(f"cannot evaluate expression {self.src!r}")
        self.pos = match.end()
        if match.group("num"):
            number = match.group("num")
            return float(number) if "." in number else int(number)
        name = match.group("ident")
        if name is None:
            raise InfraError(f"cannot evaluate expression {self.src!r}")
        if name in ("true", "false"):
            return name == "true"
        if self._peek() == "(":
            return self._postfix(self._call(name))
        path: list[str | int] = [name]
        while self._peek() in (".", "["):
            if self._peek() == ".":
                self._take(".")
                ident = _TOKEN.match(self.src, self.pos)
                if ident is None or not (ident.group("ident") or ident.group("num")):
                    raise InfraError(f"bad attribute access in {self.src!r}")
                self.pos = ident.end()
                part = ident.group("ident") or ident.group("num")
                path.append(int(part) if part.isdigit() else part)
            else:
                self._take("[")
                path.append(self.expr())
                self._take("]")
        return self.tf.reference(path, self.where)

    def _postfix(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._peek() == "[":
                self._take("[")
                key = self.expr()
                self._take("]")
            else:
                self._take(".")
                ident = _TOKEN.match(self.src, self.pos)
                if ident is None:
                    raise InfraError(f"bad attribute access in {self.src!r}")
                self.pos = ident.end()
                key = ident.group("ident") or ident.group("num")
            value = _index(value, [key], [key])
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self.expr())
            if self._peek() == ",":
                self._take(",")
        self._take(")")
        if name == "file":
            path = Path(str(args[0]))
            if not path.is_absolute():
                path = self.tf.directory / path
            try:
                return path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InfraError(f"file({args[0]!r}): {exc.strerror}") from exc
        if name not in _FUNCTIONS:
            raise InfraError(f"function {name}() is not supported by the harness")
        try:
            return _FUNCTIONS[name](*args)
        except (ValueError, TypeError, AttributeError) as exc:
            raise InfraError(f"{name}(): {exc}") from exc

    def _string(self) -> Any:
        self._skip_ws()
        start = self.pos
        self.pos += 1
        while self.pos < len(self.src):
            ch = self.src[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if ch == "$" and self.src.startswith("${", self.pos):
                self.pos = _matching_brace(self.src, self.pos + 1) + 1
                continue
            if ch == '"':
                self.pos += 1
                return self.tf._template(self.src[start + 1 : self.pos - 1], self.where)
            self.pos += 1
        raise InfraError(f"unterminated string in {self.src!r}")
