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
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from harness.aws.patches import wrap_method

__all__ = ["parse_conditions_once", "tokenize_once"]

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
