"""Restarting the stream pollers of event source mappings, through the mapping API itself.

A restart disables each mapping of the function (its poller stops after the call in flight; a
batch not yet finished is not checkpointed), waits until the mapping is ``Disabled`` and enables
it again: the new poller resumes every shard after its checkpoint, so the unfinished batch is
delivered again (at least once, as when AWS moves a shard's lease to another poller). Only the
mappings' public methods are used: the same calls as UpdateEventSourceMapping.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

__all__ = ["MappingApi", "PollerRestartError", "restart_pollers"]


class MappingApi(Protocol):
    """The parts of ``harness.streams.mappings.EventSourceMappings`` a restart uses."""

    def list_event_source_mappings(self, query: dict[str, str]) -> Any: ...

    def get_event_source_mapping(self, mapping_id: str) -> Any: ...

    def update_event_source_mapping(self, mapping_id: str, request: dict[str, Any]) -> Any: ...


class PollerRestartError(RuntimeError):
    """A mapping did not stop in time (an invocation is still running)."""


def restart_pollers(mappings: MappingApi, function: str | None, *, timeout_s: float = 90.0) -> int:
    """Stop and start again the pollers of ``function``'s enabled mappings (all if None)."""
    query = {"FunctionName": function} if function else {}
    listed = mappings.list_event_source_mappings(query)["EventSourceMappings"]
    enabled = [m["UUID"] for m in listed if m.get("State") in ("Enabled", "Enabling", "Creating")]
    for uuid in enabled:
        mappings.update_event_source_mapping(uuid, {"Enabled": False})
    deadline = time.monotonic() + timeout_s
    try:
        for uuid in enabled:
            while mappings.get_event_source_mapping(uuid)["State"] != "Disabled":
                if time.monotonic() > deadline:
                    raise PollerRestartError(
                        f"mapping {uuid} did not stop within {timeout_s:.0f} s"
                    )
                time.sleep(0.02)
    finally:
        for uuid in enabled:
            mappings.update_event_source_mapping(uuid, {"Enabled": True})
    return len(enabled)
