"""A DynamoDB request's condition or filter expression tokenized once per text, parsed once.

moto's request handlers (``DynamoHandler.put_item``, ``delete_item``, ``update_item``, Query,
Scan) parse the expression to validate the attribute names it uses, and then the model
(``Table.put_item``, ``DynamoDBBackend.delete_item``, ...) parses the same text with the same
names and values again (``comparisons.get_filter_expression``): ~13 % of the endpoint's CPU for
the stream processor's conditional PutItem (py-spy, GIL samples). Here the model's parse takes
the handler's tree when it is asked, in the same thread, for the very same text with the very
same names and values objects (the handler hands its dicts down unchanged within one request);
that tree is handed over once and then forgotten. Parsing only builds the tree (evaluating it
changes nothing in it), so the request is decided exactly as before, and bad expressions still
raise from the handler's parse.

:func:`tokenize_once`: moto tokenizes a ConditionExpression / FilterExpression from scratch, twice
per conditional write; the tokens depend on the text alone, so they are kept per text.

:func:`parse_shapes_once`: the syntax tree moto builds from those tokens depends on the text and
the attribute names; the values only fill its value leaves. The tree is kept per (text, names)
and each request's values are put in its leaves: the stream processor's conditional PutItem, on
the sync path, parsed the same condition for ~0.5 ms of its ~1.9 ms.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from harness.aws.patches import wrap_method

__all__ = ["parse_conditions_once", "parse_shapes_once", "tokenize_once"]

_last = threading.local()  # .entry: (expression, names, values, tree) of this thread's last parse


def parse_conditions_once() -> None:
    """Patch moto's handlers to remember their parse and its models to reuse it (idempotent)."""
    import moto.dynamodb.comparisons as comparisons  # noqa: PLC0415
    import moto.dynamodb.models as models  # noqa: PLC0415
    import moto.dynamodb.models.table as table  # noqa: PLC0415
    import moto.dynamodb.responses  # noqa: PLC0415

    responses: Any = moto.dynamodb.responses  # it imported the parser factory by name
    if getattr(responses.create_condition_expression_parser, "__wrapped_by_harness__", None):
        return
    create, get = comparisons.create_condition_expression_parser, comparisons.get_filter_expression

    def create_condition_expression_parser(expr: Any, names: Any, values: Any) -> Any:
        parser: Any = create(expr, names, values)
        parse = parser.parse

        def remembering_parse() -> Any:
            _last.entry = None
            tree = parse()
            _last.entry = (expr, names, values, tree)
            return tree

        parser.parse = remembering_parse
        return parser

    def get_filter_expression(expr: Any, names: Any, values: Any) -> Any:
        entry = getattr(_last, "entry", None)
        _last.entry = None
        if entry is not None and entry[0] == expr and entry[1] is names and entry[2] is values:
            return entry[3]
        return get(expr, names, values)

    create_condition_expression_parser.__wrapped_by_harness__ = create  # type: ignore[attr-defined]
    get_filter_expression.__wrapped_by_harness__ = get  # type: ignore[attr-defined]
    responses.create_condition_expression_parser = create_condition_expression_parser
    for module in (models, table):
        module.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]


def tokenize_once() -> None:
    """moto tokenizes a ConditionExpression / FilterExpression from scratch, twice per
    conditional write (~0.3 ms of a ~1.6 ms PutItem); the tokens depend on the text alone, so
    they are kept per text (bad text still raises each time: exceptions are not cached)."""
    from collections import deque  # noqa: PLC0415

    from moto.dynamodb.comparisons import ConditionExpressionParser  # noqa: PLC0415

    def make_lex(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.lru_cache(maxsize=1024)
        def tokens(expression: str) -> tuple[Any, ...]:
            return tuple(original(ConditionExpressionParser(expression, None, None)))

        def _lex_condition_expression(self: Any) -> Any:
            # fresh children lists: the later parsing steps own the nodes they are given
            return deque(node._replace(children=[]) for node in tokens(self.condition_expression))

        return _lex_condition_expression

    wrap_method(ConditionExpressionParser, "_lex_condition_expression", make_lex)


class _AnyValue(dict[str, Any]):
    """ExpressionAttributeValues that hold every name: a tree's shape is parsed without them."""

    def __missing__(self, key: str) -> dict[str, str]:
        return {"NULL": "true"}  # any value: the parser only ever places it in a leaf


def parse_shapes_once() -> None:
    """``ConditionExpressionParser.parse`` builds the tree of a (text, names) once; each call
    gets a copy whose value leaves are its own values. Anything unusual (no text, names or
    values that are not plain string maps, a value name the request lacks, a parse that fails)
    takes moto's own parse, so errors are raised as before."""
    from moto.dynamodb.comparisons import ConditionExpressionParser as Parser  # noqa: PLC0415

    value_kind = Parser.Kind.EXPRESSION_ATTRIBUTE_VALUE

    def make_parse(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.lru_cache(maxsize=256)
        def shape(expression: str, names: tuple[tuple[str, str], ...] | None) -> tuple[Any, ...]:
            parser = Parser(expression, dict(names) if names is not None else None, _AnyValue())
            trees: list[Any] = []
            make_op = parser._make_op_condition

            def capture(node: Any) -> Any:  # the finished tree, before it becomes operators
                trees.append(node)
                return make_op(node)

            parser._make_op_condition = capture  # type: ignore[method-assign]
            original(parser)
            return trees[0], tuple(parser.expr_attr_names_found), tuple(
                parser.expr_attr_values_found)

        def bind(node: Any, values: dict[str, Any]) -> Any:
            if node.kind == value_kind:
                return node._replace(value=values[node.text], children=[])
            return node._replace(children=[bind(child, values) for child in node.children])

        def parse(self: Any) -> Any:
            expression = self.condition_expression
            names, values = self.expression_attribute_names, self.expression_attribute_values
            if not expression or not isinstance(values, dict) or not (
                    names is None or isinstance(names, dict)):
                return original(self)
            try:
                key = None if names is None else tuple(sorted(names.items()))
                tree, names_found, values_found = shape(expression, key)
                bound = bind(tree, values)
            except Exception:  # noqa: BLE001 - moto's own parse raises what it raised before
                return original(self)
            self.expr_attr_names_found.extend(names_found)
            self.expr_attr_values_found.extend(values_found)
            return self._make_op_condition(bound)

        return parse

    wrap_method(Parser, "parse", make_parse)
