"""Load the canonical sample events and payloads of contracts/events/ for any test."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "events"


@cache
def _read(name: str) -> Any:
    path = EVENTS_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(event_names())
        raise FileNotFoundError(f"no sample event {name!r} in {EVENTS_DIR} (known: {known})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_event(name: str) -> dict[str, Any]:
    """Return a fresh copy of sample `name`, e.g. load_event("stream/insert-ap-id.event")."""
    return copy.deepcopy(_read(name))


def event_names() -> list[str]:
    """Return the names of all samples (paths under contracts/events without .json)."""
    return sorted(
        str(p.relative_to(EVENTS_DIR).with_suffix("")) for p in EVENTS_DIR.rglob("*.json")
    )
