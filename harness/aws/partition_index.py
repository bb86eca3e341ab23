"""Per-table map from GSI hash-key values to items, so a GSI Query reads only its partition."""

from __future__ import annotations

import heapq
from typing import Any

ATTRIBUTE = "_harness_partition_index"

PrimaryKey = tuple[Any, Any]  # (hash DynamoType, range DynamoType | None)
IndexKey = tuple[Any, ...]  # the GSI's hash attribute values, in key-schema order


def item_key(item: Any) -> PrimaryKey:
    """The primary key of a moto Item."""
    return (item.hash_key, item.range_key)


def _signature(table: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (index.name, tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"))
        for index in (table.global_indexes or [])
    )


def _all_items(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())


class PartitionIndex:
    """For every GSI of one table: hash-key values -> {primary key: item}, updated on writes.

    Lives on the moto Table object (so a TransactWriteItems rollback, which swaps in a deep copy of
    the table, swaps in a consistent copy of the index too) and holds no lock: callers hold
    moto_patches.DYNAMODB_LOCK.
    """

    def __init__(self, table: Any) -> None:
        self.signature = _signature(table)
        self._hash_attrs = dict(self.signature)
        self._buckets: dict[str, dict[IndexKey, dict[PrimaryKey, Any]]] = {
            name: {} for name in self._hash_attrs
        }
        self._placed: dict[str, dict[PrimaryKey, IndexKey]] = {
            name: {} for name in self._hash_attrs
        }
        # (index, hash values) -> (order, sorted items): dropped whenever that bucket changes
        self._sorted: dict[tuple[str, IndexKey], tuple[tuple[str, ...], list[Any]]] = {}
        for item in _all_items(table):
            self.add(item)

    @staticmethod
    def drop(table: Any) -> None:
        """Forget the index of `table` (it is rebuilt on the next GSI Query)."""
        table.__dict__.pop(ATTRIBUTE, None)

    def add(self, item: Any) -> None:
        """Place `item` under its current GSI hash-key values."""
        key = item_key(item)
        for name, attrs in self._hash_attrs.items():
            values = tuple(item.attrs.get(attr) for attr in attrs)
            if any(value is None for value in values):
                continue
            self._buckets[name].setdefault(values, {})[key] = item
            self._placed[name][key] = values
            self._sorted.pop((name, values), None)

    def remove(self, key: PrimaryKey) -> None:
        """Take the item with primary key `key` out of every GSI."""
        for name in self._hash_attrs:
            values = self._placed[name].pop(key, None)
            if values is None:
                continue
            self._sorted.pop((name, values), None)
            bucket = self._buckets[name].get(values)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._buckets[name][values]

    def reindex(self, table: Any, key: PrimaryKey) -> None:
        """Re-place one item after a write (or drop it if it is gone)."""
        self.remove(key)
        hash_key, range_key = key
        partition = table.items.get(hash_key)
        if partition is None:
            return
        item = partition.get(range_key) if table.range_key_attr else partition
        if item is not None:
            self.add(item)

    def candidates(
        self,
        index_name: str,
        conditions: dict[str, Any],
        order_by: list[str],
        required: tuple[str, ...] = (),
    ) -> list[Any] | None:
        """The items of one GSI partition, or None when the conditions do not name it fully.

        They come pre-sorted by `order_by` (the GSI range key, then the table keys), so moto's own
        sort of the partition is a single linear pass; the order is kept until the partition
        changes, so repeated Queries of an unchanged partition sort nothing. Items without one of
        the `required` attributes (the GSI's range keys) are left out, as moto skips them (a GSI
        holds only items with every key attribute), so a caller may slice the list.
        """
        attrs = self._hash_attrs.get(index_name)
        if attrs is None or any(attr not in conditions for attr in attrs):
            return None
        values = tuple(conditions[attr] for attr in attrs)
        bucket = self._buckets[index_name].get(values)
        if not bucket:
            return []
        order = (*order_by, "|", *required)
        cached = self._sorted.get((index_name, values))
        if cached is None or cached[0] != order:
            present = (i for i in bucket.values() if all(i.attrs.get(a) for a in required))
            items = sorted(present, key=lambda item: _sort_key(item, order_by))
            cached = self._sorted[(index_name, values)] = (order, items)
        return list(cached[1])  # a copy: moto sorts the list it is given


def _sort_key(item: Any, attrs: list[str]) -> tuple[tuple[int, Any], ...]:
    values = (item.attrs.get(attr) for attr in attrs)
    return tuple((0, 0) if value is None else (1, value.cast_value) for value in values)


def index_of(table: Any, *, build: bool = True) -> PartitionIndex | None:
    """The table's index (built on first use when `build`); None if absent and not built."""
    index: PartitionIndex | None = table.__dict__.get(ATTRIBUTE)
    if index is not None and index.signature != _signature(table):
        index = None  # GSIs were added or removed
        PartitionIndex.drop(table)
    if index is None and build and table.global_indexes:
        index = PartitionIndex(table)
        table.__dict__[ATTRIBUTE] = index
    return index


def query_candidates(table: Any, args: dict[str, Any]) -> list[Any] | None:
    """The items a Query can match (its partition), or None to let moto look at everything."""
    index_name = args.get("index_name")
    if not index_name:
        hash_key = args.get("hash_key")
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]
    conditions = dict(args.get("hash_key_conditions") or [])
    for lsi in table.indexes or []:
        if lsi.name == index_name and table.hash_key_attr in conditions:
            partition = table.items.get(conditions[table.hash_key_attr])
            if partition is None:
                return []
            return list(partition.values()) if table.range_key_attr else [partition]
    index = index_of(table)
    if index is None:
        return None
    _, order_by = _gsi_order(table, index_name)
    return index.candidates(index_name, conditions, order_by, _gsi_ranges(table, index_name))


def query_window(candidates: list[Any], table: Any, args: dict[str, Any]) -> list[Any]:
    """The part of a Query's `candidates` moto can reach: with a Limit and nothing that skips
    items before it (no sort-key condition, no ExclusiveStartKey, no legacy QueryFilter), moto
    walks them in key order and stops after Limit + 1 (the one that tells it to return
    LastEvaluatedKey), so only those are handed over, from the end ScanIndexForward starts at.
    Of base-table candidates the Limit + 1 first in range-key order are picked here (moto then
    sorts those few).
    """
    limit = args.get("limit")
    if (
        not isinstance(limit, int)
        or limit < 1
        or args.get("range_comparison")
        or args.get("range_key_conditions")
        or args.get("filter_kwargs")
        or args.get("exclusive_start_key") is not None
        or len(candidates) <= limit + 1
    ):
        return candidates
    if not args.get("index_name"):
        if not table.range_key_attr:
            return candidates

        def by_range(item: Any) -> Any:
            return item.range_key.cast_value  # what DynamoType's ordering compares

        if args.get("scan_index_forward") is False:  # the last Limit + 1, in ascending order
            return sorted(heapq.nlargest(limit + 1, candidates, key=by_range), key=by_range)
        return heapq.nsmallest(limit + 1, candidates, key=by_range)
    if not _moto_keeps_order(table, args.get("index_name")):
        return candidates  # an LSI, or moto sorts by other attributes than the index did
    if args.get("scan_index_forward") is False:
        return candidates[-(limit + 1):]
    return candidates[: limit + 1]


def _moto_keeps_order(table: Any, index_name: str | None) -> bool:
    """True when moto sorts a GSI Query's items by the attributes the index sorted them by
    (moto's Table.query builds its sort attributes this way for a GSI with a range key)."""
    hashes, order_by = _gsi_order(table, index_name)
    ranges = _gsi_ranges(table, index_name)
    if not hashes or not ranges:
        return False
    moto_order = table._generate_attr_to_sort_by(
        [*hashes, table.hash_key_attr], [*ranges, table.range_key_attr]
    )
    return tuple(moto_order) == (*hashes, *order_by)


def _gsi_ranges(table: Any, index_name: str | None) -> tuple[str, ...]:
    gsi = next((i for i in table.global_indexes or [] if i.name == index_name), None)
    return tuple(k["AttributeName"] for k in (gsi.schema if gsi else []) if k["KeyType"] == "RANGE")


def _gsi_order(table: Any, index_name: str | None) -> tuple[list[str], list[str]]:
    """A GSI's hash attributes, and the order its Query items come in: its range attributes,
    then the table's keys (no hash or range attributes when there is no such GSI)."""
    gsi = next((i for i in table.global_indexes or [] if i.name == index_name), None)
    schema = gsi.schema if gsi is not None else []
    hashes = [k["AttributeName"] for k in schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
    table_keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return hashes, ranges + table_keys


def gsi_sort_attributes(table: Any, index_name: str | None) -> tuple[str, ...] | None:
    """The attributes moto sorts a GSI Query's items by, for which :func:`query_candidates`
    returned them already sorted (its GSI hash keys are equal across them); None if not a GSI."""
    hashes, order_by = _gsi_order(table, index_name)
    return tuple(hashes + order_by) if hashes else None
