"""A DynamoDB request's condition or filter expression parsed once, not twice.

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
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["parse_conditions_once"]

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
