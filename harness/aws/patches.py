"""Every fix the harness applies to moto's internals, pinned to one moto version.

Each patch answers a defect measured in ../shared/reference/moto.md:
  1. Query / GSI Query cost: a per-table map from index hash-key values to items, so a Query
     looks at its own partition instead of sorting the whole table, and of it only the Limit + 1
     items moto can reach when nothing skips items (partition_index.query_window); item-bearing
     answers (Query, Scan, GetItem, BatchGetItem) written with one JSON dump instead of moto's
     model-walking serializer (which costs ~1 ms per returned item), by the default encoder
     (answer_patches), and JSON answers are not scanned for an XML RequestId; an item's byte size (for
     the 1 MB page limit) computed directly, once per item until UpdateItem changes it, instead
     of twice per Query through DynamoType; the JSON text of a stored item answered by a Query
     kept on it the same way (item_json).
     Condition / filter expressions tokenized once per text, and parsed once per request
     (condition_patches).
  2. Lost concurrent updates: one lock around every DynamoDB and DynamoDB Streams action.
  3. HTML 500s: crashes in DynamoDB / Streams actions become AWS-shaped JSON errors
     (the generic fallback for every other service is in harness.aws.moto_app).
  4. Stream records: the table's region, an eventSourceARN, one INSERT for UpdateItem on a new
     key, and nothing for a write that changes nothing.
     GetRecords answers written with one JSON dump as well.
  5. GetRecords iterators: kept at most 15 minutes and at most 1,000 per backend;
     unknown iterators / shards answer ExpiredIteratorException / ValidationException /
     ResourceNotFoundException instead of crashing.
     moto's BaseModel also keeps every DynamoDB object ever made (each iterator, each Item copy
     a Query returns) in a class-level list for its dashboard: not for DynamoDB / Streams here.
  6. MOTO_IAM_LOAD_MANAGED_POLICIES=true, so AWS managed policies exist.
  7. Start-up cost (in harness.aws.warmup): account lookups build no unused IAM partitions;
     ECS imports EC2 on first use only; werkzeug compiles URL builders on first use only.
  8. Memory: Flask (in the debug mode moto runs it in) made a class per request, which
     fragmented the heap; its enctype helper is left out.
  9. Per-request work on constants: moto listed its package directories from disk and
     inspected the response class's members on every request; both are looked up once.
  10. Reset cost (in harness.aws.reset): AWS managed policies parsed once and copied per IAM
     backend; backends dropped by a reset are not rebuilt first; a request's access key is looked
     up only in IAM backends already built (none after a reset), so nothing is built for it.
`verify_internals()` fails loudly when a moto upgrade changed what these patches rely on.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from harness.aws import item_json
from harness.aws.answer_patches import dump_answer, skip_request_id_scan_without_xml
from harness.aws.condition_patches import parse_conditions_once
from harness.aws.partition_index import (
    PartitionIndex,
    gsi_sort_attributes,
    index_of,
    item_key,
    query_candidates,
    query_window,
)
from harness.aws.responses import (
    error_response,
    item_size,
    plain_item,
    plain_items_result,
    validation_message,
    with_event_source_arn,
)

MOTO_VERSION = "5.2.5"
EXPRESSION_PARAMS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
)
FAST_SERIALIZED = frozenset({"Query", "Scan", "GetItem", "BatchGetItem"})

# The moto internals the patches rely on: "module:qualname" -> its parameter names.
# fmt: off
INTERNALS: dict[str, str] = {
    "moto.dynamodb.models.table:Table.query":
        "self hash_key range_comparison range_objs limit exclusive_start_key "
        "scan_index_forward projection_expressions index_name consistent_read "
        "filter_expression hash_key_conditions range_key_conditions filter_kwargs",
    "moto.dynamodb.models.table:Table.all_items": "self",
    "moto.dynamodb.models.table:Table.sorted_items": "self hash_key_attrs range_key_attrs items",
    "moto.dynamodb.models.table:Table._generate_attr_to_sort_by":
        "self hash_key_attrs range_key_attrs",
    "moto.dynamodb.models.dynamo_type:Item.size": "self",
    "moto.dynamodb.comparisons:ConditionExpressionParser._lex_condition_expression": "self",
    "moto.dynamodb.models.table:Table.put_item":
        "self item_attrs expected condition_expression expression_attribute_names "
        "expression_attribute_values overwrite return_values_on_condition_check_failure",
    "moto.dynamodb.models.table:Table.delete_item": "self hash_key range_key",
    "moto.dynamodb.models.table:StreamShard.add": "self old new",
    "moto.dynamodb.models.table:StreamRecord.__init__":
        "self table stream_type event_name old new seq",
    "moto.dynamodb.models:DynamoDBBackend.update_item":
        "self table_name key update_expression expression_attribute_names "
        "expression_attribute_values attribute_updates expected condition_expression "
        "return_values_on_condition_check_failure",
    "moto.dynamodb.responses:DynamoHandler.call_action": "self",
    "moto.dynamodb.responses:DynamoHandler.serialized": "self action_result",
    "moto.dynamodb.models.utilities:dynamo_json_dump": "dynamo_object",
    "moto.dynamodb.models.utilities:dynamo_to_dict": "obj",
    "moto.dynamodb.responses:DynamoResult.__init__": "self result",
    "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.call_action": "self",
    "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.serialized": "self action_result",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.__init__": "self region_name account_id",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.get_shard_iterator":
        "self arn shard_id shard_iterator_type sequence_number",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.get_records": "self iterator_arn limit",
    "moto.dynamodbstreams.models:ShardIterator.get": "self limit",
    # harness.aws.retention: CloudWatch's retention
    "moto.cloudwatch.models:CloudWatchBackend.put_metric_data": "self namespace metric_data",
    "moto.logs.models:LogGroup.put_log_events": "self log_stream_name log_events",
    "moto.core.common_models:BaseModel.__new__": "cls args kwargs",
    "moto.iam.models:get_account_id_from": "access_key",  # harness.aws.warmup
    "werkzeug.routing.rules:Rule._compile_builder": "self append_unknown",  # harness.aws.warmup
    "flask.debughelpers:attach_enctype_error_multidict": "request",  # Flask, as moto runs it
    "moto.backends:list_of_moto_modules": "",
    "moto.core.responses:method_names_from_class": "clazz",
    "moto.core.responses:BaseResponse._enrich_response": "headers body",  # answer_patches
    # condition_patches: the handler's parse, then the model's
    "moto.dynamodb.responses:create_condition_expression_parser": "expr names values",
    "moto.dynamodb.models:get_filter_expression": "expr names values",
    "moto.dynamodb.models.table:get_filter_expression": "expr names values",
    # harness.aws.reset: a cheap reset
    "moto.iam.models:IAMBackend._init_aws_policies": "self",
    "moto.iam.models:mark_account_as_visited": "account_id access_key service region",
    "moto.core.base_backend:BackendDict.reset": "",
    "moto.core.base_backend:BaseBackend.reset": "self",
}
# fmt: on

logger = logging.getLogger("harness.aws.patches")
DYNAMODB_LOCK = threading.RLock()
_state = threading.local()
SIZE_ATTRIBUTE = "_harness_item_size"  # (generation, byte size) on a moto Item
_size_generation = [0]  # bumped when an update failed half-way: every kept size is stale
_applied = False
_apply_lock = threading.Lock()


class MotoPatchError(RuntimeError):
    """moto is not the version (or shape) these patches were written for."""


def _resolve(dotted: str) -> Any:
    import importlib  # noqa: PLC0415

    module_name, _, qualname = dotted.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def verify_internals() -> None:
    """Raise MotoPatchError unless moto is MOTO_VERSION with the internals listed in INTERNALS."""
    import moto  # noqa: PLC0415

    if moto.__version__ != MOTO_VERSION:
        raise MotoPatchError(
            f"harness.aws.patches is written for moto {MOTO_VERSION} but moto "
            f"{moto.__version__} is installed: pin moto=={MOTO_VERSION} or re-check every patch "
            "(tests/harness/aws/test_moto_patches.py) before moving the pin"
        )
    problems = []
    for dotted, expected in INTERNALS.items():
        try:
            function = _resolve(dotted)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{dotted}: missing ({exc})")
            continue
        function = getattr(function, "__wrapped_by_harness__", function)
        names = " ".join(inspect.signature(function).parameters)
        if names != expected:
            problems.append(f"{dotted}: parameters {names}, expected {expected}")
    if problems:
        raise MotoPatchError("moto internals changed: " + "; ".join(problems))


def apply() -> str:
    """Apply every patch once (idempotent); return the moto version."""
    global _applied
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with _apply_lock:
        if not _applied:
            verify_internals()
            _patch_locking_and_errors()
            _patch_query()
            _patch_condition_lexing()
            _patch_streams()
            from harness.aws import stream_patches  # noqa: PLC0415

            stream_patches.serialize_get_records_once()
            stream_patches.bound_shard_iterators()
            from harness.aws import retention  # noqa: PLC0415

            retention.apply()
            _patch_instance_tracking()
            _patch_per_request_classes()
            _patch_per_request_lookups()
            skip_request_id_scan_without_xml()
            parse_conditions_once()
            from harness.aws import warmup as moto_warmup  # noqa: PLC0415

            moto_warmup.look_up_keys_in_built_partitions()
            moto_warmup.defer_ec2_for_ecs()
            moto_warmup.defer_url_builders()
            from harness.aws import reset  # noqa: PLC0415

            reset.keep_managed_policies_across_resets()
            reset.drop_backends_without_rebuilding()
            reset.visit_only_built_iam_backends()
            _applied = True
    return MOTO_VERSION


def wrap_method(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)``, remembering the original."""
    original = getattr(owner, name)
    replacement = make(original)
    replacement.__wrapped_by_harness__ = original
    replacement.__name__ = getattr(original, "__name__", name)
    setattr(owner, name, replacement)


# ---- 2 + 3: one lock, and JSON errors instead of crashes ------------------------------------


def _locked_call_action(original: Callable[[Any], Any], streams: bool) -> Callable[[Any], Any]:
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415

    def call_action(self: Any) -> Any:
        try:
            with DYNAMODB_LOCK:
                response = original(self)
            if streams and self.headers.get("X-Amz-Target", "").endswith(".GetRecords"):
                return with_event_source_arn(response)
            return response
        except HTTPException:
            raise
        except Exception as exc:
            target = self.headers.get("X-Amz-Target", "?")
            logger.warning("moto crashed on %s: %s: %s", target, type(exc).__name__, exc)
            params = getattr(self, "params", None) or {}
            if streams or any(name in params for name in EXPRESSION_PARAMS):
                return error_response(400, "ValidationException", validation_message(exc))
            return error_response(
                500,
                "InternalServerError",
                f"Internal error in the local endpoint: {type(exc).__name__}",
            )

    return call_action


def _patch_locking_and_errors() -> None:
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: PLC0415

    wrap_method(DynamoHandler, "call_action", lambda f: _locked_call_action(f, streams=False))
    wrap_method(DynamoDBStreamsHandler, "call_action", lambda f: _locked_call_action(f, streams=True))


# ---- 1: Query cost proportional to the partition ------------------------------------------


def _patch_query() -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415
    from moto.dynamodb.models.utilities import (
        dynamo_json_dump,  # noqa: PLC0415
        dynamo_to_dict,  # noqa: PLC0415
    )
    from moto.dynamodb.responses import DynamoHandler, DynamoResult  # noqa: PLC0415

    signature = inspect.signature(Table.query)

    table_module = sys.modules[Table.__module__]
    if "results = copy.deepcopy(results)" not in inspect.getsource(Table.query):
        raise MotoPatchError(
            "moto's Table.query no longer deep-copies its results as the patch expects"
        )
    table_module.copy = _ResultCopy()  # type: ignore[attr-defined]

    def make_query(original: Callable[..., Any]) -> Callable[..., Any]:
        def query(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind(self, *args, **kwargs).arguments
            candidates = query_candidates(self, arguments)
            if candidates is not None:
                candidates = query_window(candidates, self, arguments)
            # The results are serialized at once and never mutated, so moto's defensive deep
            # copy is only needed when a projection will rewrite the items.
            _state.shallow_results = not arguments.get("projection_expressions") and _projects_all(
                self, arguments.get("index_name")
            )
            _state.hint = (self, candidates) if candidates is not None else None
            sort_attributes = (
                gsi_sort_attributes(self, arguments.get("index_name"))
                if candidates is not None
                else None
            )
            _state.presorted = (self, sort_attributes) if sort_attributes is not None else None
            item_json.forget()
            try:
                answer = original(self, *args, **kwargs)
                if _state.shallow_results:  # the stored items themselves: their JSON is kept
                    item_json.remember(answer[0])
                return answer
            finally:
                _state.hint = None
                _state.presorted = None
                _state.shallow_results = False

        return query

    def make_sorted_items(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def sorted_items(
            self: Any, hash_key_attrs: list[str], range_key_attrs: list[Any], items: list[Any]
        ) -> list[Any]:
            presorted = getattr(_state, "presorted", None)
            if presorted is not None and presorted[0] is self:
                by = tuple(self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs))
                if by == presorted[1]:
                    return items  # already in this order (a stable sort would keep it)
            return original(self, hash_key_attrs, range_key_attrs, items)

        return sorted_items

    def make_item_size(original: Callable[[Any], int]) -> Callable[[Any], int]:
        def size(self: Any) -> int:
            # Kept on the item across Queries: an item changes in place only in UpdateItem
            # (directly or in a transaction), which forgets it (make_update_item); PutItem and
            # PartiQL writes store new Item objects. Copies (moto's __deepcopy__) start empty.
            known = self.__dict__.get(SIZE_ATTRIBUTE)
            if known is not None and known[0] == _size_generation[0]:
                return int(known[1])
            value = item_size(self.attrs)
            self.__dict__[SIZE_ATTRIBUTE] = (_size_generation[0], value)
            return value

        return size

    def make_all_items(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def all_items(self: Any) -> Any:
            hint = getattr(_state, "hint", None)
            if hint is not None and hint[0] is self:
                return hint[1]
            return original(self)

        return all_items

    def make_put_item(original: Callable[..., Any]) -> Callable[..., Any]:
        def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
            item = original(self, *args, **kwargs)
            index = index_of(self, build=False)
            if index is not None:
                index.reindex(self, item_key(item))
            return item

        return put_item

    def make_delete_item(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
            item = original(self, *args, **kwargs)
            index = index_of(self, build=False)
            if item is not None and index is not None:
                index.remove(item_key(item))
            return item

        return delete_item

    def make_update_item(original: Callable[..., Any]) -> Callable[..., Any]:
        def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            records: list[tuple[Any, Any]] = []
            outer = getattr(_state, "stream_buffer", None)
            _state.stream_buffer = records
            ok = False
            try:
                item = original(self, table_name, *args, **kwargs)
                ok = True
                return item
            finally:
                _state.stream_buffer = outer
                table = self.tables.get(table_name)
                if ok and item is not None:
                    item.__dict__.pop(SIZE_ATTRIBUTE, None)  # changed in place
                    item.__dict__.pop(item_json.JSON_ATTRIBUTE, None)
                elif not ok:
                    _size_generation[0] += 1  # a partial change: forget every size
                if table is not None:
                    index = index_of(table, build=False)
                    if index is not None:
                        if ok:
                            index.reindex(table, item_key(item))
                        else:
                            PartitionIndex.drop(table)  # partial change: rebuild on next Query
                    if records and table.stream_shard is not None:
                        table.stream_shard.add(records[0][0], records[-1][1])

        return update_item

    def make_serialized(original: Callable[..., Any]) -> Callable[..., Any]:
        def serialized(self: Any, action_result: Any) -> Any:
            result = getattr(action_result, "result", None)
            action = str(self.headers.get("X-Amz-Target", "")).rsplit(".", 1)[-1]
            if action not in FAST_SERIALIZED or not isinstance(result, dict):
                return original(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
            answer = dump_answer(result, dynamo_json_dump)
            texts = action_result.__dict__.get(item_json.ITEMS_JSON)
            return 200, headers, answer if texts is None else item_json.splice(answer, texts)

        return serialized

    def make_result_init(original: Callable[..., None]) -> Callable[..., None]:
        from moto.core.responses import ActionResult  # noqa: PLC0415

        def __init__(self: Any, result: object) -> None:
            # moto converts every value recursively; flat items (most answers) are copied directly,
            # and a Query's stored items are written from the JSON text they keep (item_json).
            texts = item_json.take(result, _size_generation[0],
                                   lambda attrs: plain_item(attrs, dynamo_to_dict))
            if texts is not None and isinstance(result, dict):
                result = {**result, "Items": item_json.ITEMS_MARK}
                self.__dict__[item_json.ITEMS_JSON] = texts
            ActionResult.__init__(self, plain_items_result(result, dynamo_to_dict))

        return __init__

    wrap_method(DynamoHandler, "serialized", make_serialized)
    wrap_method(DynamoResult, "__init__", make_result_init)
    wrap_method(Table, "query", make_query)
    wrap_method(Table, "sorted_items", make_sorted_items)
    wrap_method(Item, "size", make_item_size)
    wrap_method(Table, "all_items", make_all_items)
    wrap_method(Table, "put_item", make_put_item)
    wrap_method(Table, "delete_item", make_delete_item)
    wrap_method(DynamoDBBackend, "update_item", make_update_item)


def _patch_condition_lexing() -> None:
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


class _ResultCopy:
    """moto's ``copy`` module, as ``moto.dynamodb.models.table`` sees it: ``deepcopy`` of the
    Query results is a shallow list copy while a Query that needs no copy runs in this thread."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_state, "shallow_results", False) and isinstance(value, list):
            return list(value)
        return copy.deepcopy(value, memo)


def _projects_all(table: Any, index_name: str | None) -> bool:
    if not index_name:
        return True
    index = table.get_index(index_name)
    return bool((index.projection or {}).get("ProjectionType") == "ALL")


# ---- 4: stream records as AWS writes them --------------------------------------------------


def _patch_streams() -> None:
    from moto.dynamodb.models.table import StreamRecord, StreamShard  # noqa: PLC0415

    def make_record_init(original: Callable[..., None]) -> Callable[..., None]:
        def __init__(self: Any, table: Any, *args: Any, **kwargs: Any) -> None:
            original(self, table, *args, **kwargs)
            self.record["awsRegion"] = table.region_name
            self.record["eventSourceARN"] = f"{table.table_arn}/stream/{table.latest_stream_label}"

        return __init__

    def make_add(original: Callable[..., None]) -> Callable[..., None]:
        def add(self: Any, old: Any, new: Any) -> None:
            buffer = getattr(_state, "stream_buffer", None)
            if buffer is not None:  # inside UpdateItem: one record for the whole update
                buffer.append((old, new))
                return
            if old is not None and new is not None and old == new:
                return  # AWS writes no record when nothing changed
            if old is None and new is None:
                return
            original(self, old, new)

        return add

    wrap_method(StreamRecord, "__init__", make_record_init)
    wrap_method(StreamShard, "add", make_add)


UNTRACKED_SERVICES = frozenset({"dynamodb", "dynamodbstreams", "cloudwatch", "logs"})


def _patch_instance_tracking() -> None:
    from moto.core.common_models import BaseModel  # noqa: PLC0415
    from moto.core.model_instances import model_data  # noqa: PLC0415

    def make_new(original: Callable[..., Any]) -> Callable[..., Any]:
        def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
            if cls.__module__.split(".")[1] in UNTRACKED_SERVICES:
                return object.__new__(cls)
            return original(cls, *args, **kwargs)

        return __new__

    wrap_method(BaseModel, "__new__", make_new)
    for service in UNTRACKED_SERVICES:
        for model in model_data.get(service, {}).values():
            model.instances_tracked = []  # type: ignore[attr-defined]


# ---- 8: no class made per request ----------------------------------------------------------


def _patch_per_request_classes() -> None:
    import flask.debughelpers  # noqa: PLC0415
    import flask.wrappers  # noqa: PLC0415

    # Flask's Request._load_form_data imports the helper from flask.debughelpers when it runs.
    if "from .debughelpers import attach_enctype_error_multidict" not in inspect.getsource(
        flask.wrappers.Request._load_form_data
    ):
        raise MotoPatchError("Flask no longer looks its enctype helper up as the patch expects")

    def make_attach(original: Callable[[Any], None]) -> Callable[[Any], None]:
        def attach_enctype_error_multidict(request: Any) -> None:
            """Leave request.files a plain MultiDict (a missing file is still a KeyError)."""

        return attach_enctype_error_multidict

    wrap_method(flask.debughelpers, "attach_enctype_error_multidict", make_attach)


# ---- 9: per-request lookups of things that never change, made once --------------------------


def _patch_per_request_lookups() -> None:
    import moto.backends  # noqa: PLC0415
    import moto.core.responses  # noqa: PLC0415

    def make_modules(original: Callable[[], Any]) -> Callable[[], Any]:
        modules = tuple(original())  # moto's package directories: listed from disk per request

        def list_of_moto_modules() -> Any:
            return modules

        return list_of_moto_modules

    def make_method_names(original: Callable[[object], list[str]]) -> Callable[[object], Any]:
        known: dict[object, list[str]] = {}  # inspect.getmembers of the class, per request

        def method_names_from_class(clazz: object) -> list[str]:
            names = known.get(clazz)
            if names is None:
                names = known[clazz] = original(clazz)
            return names

        return method_names_from_class

    wrap_method(moto.backends, "list_of_moto_modules", make_modules)
    wrap_method(moto.core.responses, "method_names_from_class", make_method_names)
