"""Query answers written from JSON text kept on each stored item until the item changes.

A Query answer's items are the stored moto ``Item`` objects themselves (no projection: moto's
deep copy is skipped, see query_patches.py), and the same items are answered again and again (every
request for a user's page, a GSI partition). Converting and encoding them cost ~0.35 ms CPU per
50 items; here each item keeps its JSON text (``JSON_ATTRIBUTE``: generation, text) beside the
byte size query_patches.py keeps, dropped by the same rule: UpdateItem changes an item in place (its
text is dropped; a half-failed update bumps the generation, so every kept text is stale);
PutItem and PartiQL writes store new ``Item`` objects. The answer is the text ``json.dumps``
writes for moto's plain answer, byte for byte: the items are spliced into the rest of the answer
(dumped with a marker in their place) with the separator ``json.dumps`` puts between list
elements.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["ITEMS_JSON", "ITEMS_MARK", "JSON_ATTRIBUTE", "forget", "remember", "splice", "take"]

JSON_ATTRIBUTE = "_harness_item_json"  # (generation, JSON text) on a stored moto Item
ITEMS_JSON = "_harness_items_json"  # the items' texts, on the DynamoResult that answers them
#: stands for the items in the answer while it is dumped; random, so no stored value is it
ITEMS_MARK = f"harness-items-{uuid.uuid4().hex}"
_ENCODED_MARK = json.dumps(ITEMS_MARK)
_current = threading.local()  # .items: {id(attrs): Item} of the Query this thread answers


def remember(items: list[Any]) -> None:
    """The stored items a Query in this thread is about to answer (shallow results only)."""
    _current.items = {id(item.attrs): item for item in items}


def forget() -> None:
    """No Query answer is being written in this thread."""
    _current.items = None


def take(result: Any, generation: int, plain: Callable[[Any], Any]) -> list[str] | None:
    """The JSON texts of ``result["Items"]`` if they are all remembered stored items, else None.

    ``plain`` makes an item's attributes plain (``responses.plain_item``); texts are kept on the
    items for ``generation``. Forgets what was remembered either way.
    """
    known: dict[int, Any] | None = getattr(_current, "items", None)
    _current.items = None
    attrs_list = result.get("Items") if known and isinstance(result, dict) else None
    if not isinstance(attrs_list, list):
        return None
    texts = []
    for attrs in attrs_list:
        item = known.get(id(attrs)) if known else None
        if item is None or item.attrs is not attrs:
            return None
        kept = item.__dict__.get(JSON_ATTRIBUTE)
        if kept is None or kept[0] != generation:
            try:
                kept = (generation, json.dumps(plain(attrs)))
            except TypeError:  # a value only moto's encoder writes: the answer goes moto's way
                return None
            item.__dict__[JSON_ATTRIBUTE] = kept
        texts.append(kept[1])
    return texts


def splice(answer: str, texts: list[str]) -> str:
    """``answer`` (dumped with ``ITEMS_MARK`` for its items) with the items' texts in place."""
    return answer.replace(_ENCODED_MARK, "[" + ", ".join(texts) + "]", 1)
