"""Per-answer work moto does in proportion to an answer's size, done only where it changes bytes.

- ``BaseResponse._enrich_response`` runs a look-behind regular expression over every answer body
  to put the request id into an XML ``<RequestId>`` element. A JSON answer (every DynamoDB and
  DynamoDB Streams answer) has none, yet the scan costs ~7 % of the endpoint's CPU for a Query
  of 50 items (py-spy, GIL samples). Bodies without ``<RequestId>`` skip it: the regular
  expression could not match them, so every answer is byte for byte what moto wrote.
- :func:`dump_answer`: item-bearing DynamoDB answers are plain dicts, lists and strings once
  ``responses.plain_items_result`` made them, so the default JSON encoder writes them (the same
  bytes: same separators, same escaping); only an answer holding something else (a datetime,
  bytes) goes through moto's encoder class, which costs ~35 % more CPU per dump.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dump_answer", "skip_request_id_scan_without_xml"]

_REQUEST_ID_TAG = "<RequestId>"


def dump_answer(result: Any, fallback: Callable[[Any], str]) -> str:
    """``result`` as moto's ``dynamo_json_dump`` writes it, by the default encoder if it can."""
    try:
        return json.dumps(result)
    except TypeError:  # a value only moto's encoder knows how to write
        return fallback(result)


def skip_request_id_scan_without_xml() -> None:
    """``BaseResponse._enrich_response`` scans a body only when it holds ``<RequestId>``."""
    from moto.core.responses import BaseResponse  # noqa: PLC0415

    original = BaseResponse._enrich_response
    if getattr(original, "__wrapped_by_harness__", None) is not None:
        return

    def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and _REQUEST_ID_TAG not in body:
            # what moto does besides the XML substitution: status as text, a request id header
            headers, _ = original(headers, "")
            return headers, body
        return original(headers, body)

    _enrich_response.__wrapped_by_harness__ = original  # type: ignore[attr-defined]
    BaseResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign]
