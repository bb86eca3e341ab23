"""Query cost proportional to the partition (item 1 of harness.aws.patches, which applies it).

- A per-table map from index hash-key values to items (``partition_index``), so a Query looks at
  its own partition instead of sorting the whole table, and of it only the Limit + 1 items moto
  can reach when nothing skips items (``partition_index.query_window``); PutItem, DeleteItem and
  UpdateItem keep the map current (a half-failed UpdateItem drops it, rebuilt on next Query).
- moto's defensive deep copy of a Query's results is a shallow list copy when no projection will
  rewrite the items (:class:`_ResultCopy`), and a GSI partition already in sort order is not
  sorted again.
- Item-bearing answers (Query, Scan, GetItem, BatchGetItem) written with one JSON dump instead of
  moto's model-walking serializer (~1 ms per returned item), by the default encoder
  (``answer_patches.dump_answer``); the JSON text of a stored item a Query answers is kept on it
  (``item_json``).
- An item's byte size (for the 1 MB page limit) computed directly, once per item until
  UpdateItem changes it, instead of twice per Query through DynamoType.
UpdateItem also gathers the stream records of one update (``stream_patches.UPDATE_RECORDS``) and
adds one record for the whole update.
"""

from __future__ import annotations

import copy
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from harness.aws import item_json
from harness.aws.answer_patches import dump_answer
from harness.aws.partition_index import (
    PartitionIndex,
    gsi_sort_attributes,
    index_of,
    item_key,
    query_candidates,
    query_window,
)
from harness.aws.patches import MotoPatchError, wrap_method
from harness.aws.responses import item_size, plain_item, plain_items_result
from harness.aws.stream_patches import UPDATE_RECORDS

__all__ = ["SIZE_ATTRIBUTE", "compare_strings_directly", "project_all_directly", "speed_up_query"]

FAST_SERIALIZED = frozenset({"Query", "Scan", "GetItem", "BatchGetItem"})
_state = threading.local()
SIZE_ATTRIBUTE = "_harness_item_size"  # (generation, byte size) on a moto Item
_size_generation = [0]  # bumped when an update failed half-way: every kept size is stale


def speed_up_query() -> None:
    """Wrap moto's Table, Item, DynamoDBBackend.update_item and the DynamoDB answer writers."""
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
            outer = getattr(UPDATE_RECORDS, "buffer", None)
            UPDATE_RECORDS.buffer = records
            ok = False
            try:
                item = original(self, table_name, *args, **kwargs)
                ok = True
                return item
            finally:
                UPDATE_RECORDS.buffer = outer
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


def compare_strings_directly() -> None:
    """``==`` / ``!=`` of two DynamoDB strings or binaries compare type and value, as moto's do:
    its ``cast_value`` returns the value itself for them, after five type tests per side (a GSI
    Query compares the hash key of every item in its window, ~3 us each). Numbers, sets, lists,
    maps and nulls keep moto's comparison."""
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    direct = ("S", "B")

    def make_eq(original: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        def __eq__(self: Any, other: Any) -> bool:
            if type(other) is DynamoType and self.type in direct and other.type in direct:
                return bool(self.type == other.type and self.value == other.value)
            return original(self, other)

        return __eq__

    def make_ne(original: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        def __ne__(self: Any, other: Any) -> bool:
            if type(other) is DynamoType and self.type in direct and other.type in direct:
                return bool(self.type != other.type or self.value != other.value)
            return original(self, other)

        return __ne__

    wrap_method(DynamoType, "__eq__", make_eq)
    wrap_method(DynamoType, "__ne__", make_ne)


def project_all_directly() -> None:
    """An index projecting ALL hands a Query's item back as it is, as moto's ``project`` does,
    without first building its key-attribute list (once per returned item of a GSI Query)."""
    from moto.dynamodb.models.table import SecondaryIndex  # noqa: PLC0415

    def make_project(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def project(self: Any, item: Any) -> Any:
            if self.projection and self.projection.get("ProjectionType") == "ALL":
                return item
            return original(self, item)

        return project

    wrap_method(SecondaryIndex, "project", make_project)


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

