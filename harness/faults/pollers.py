"""Restarting the stream pollers of event source mappings, through the mapping API itself.

A restart disables each mapping of the function (its poller stops after the call in flight; a
batch not yet finished is not checkpointed), waits until the mapping is ``Disabled`` and enables
it again: the new poller resumes every shard after its checkpoint, so the unfinished batch is
delivered again (at least once, as when AWS moves a shard's lease to another poller). Only the
mappings' public methods are used: the same calls as UpdateEventSourceMapping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    deadline = time.monotonic() + timeout_s
    for uuid in enabled:  # AWS: updating a mapping while it is Creating is ResourceInUseException
        _wait_state(mappings, uuid, lambda state: state != "Creating", deadline, timeout_s)
    for uuid in enabled:
        mappings.update_event_source_mapping(uuid, {"Enabled": False})
    try:
        for uuid in enabled:
            _wait_state(mappings, uuid, lambda state: state == "Disabled", deadline, timeout_s)
    finally:
        for uuid in enabled:
            mappings.update_event_source_mapping(uuid, {"Enabled": True})
    return len(enabled)


def _wait_state(mappings: MappingApi, uuid: str, done: Callable[[str], bool], deadline: float,
                timeout_s: float) -> None:
    state = mappings.get_event_source_mapping(uuid)["State"]
    while not done(state):
        if time.monotonic() > deadline:
            raise PollerRestartError(
                f"mapping {uuid} is still {state} after {timeout_s:.0f} s (an invocation is "
                "still running?)"
            )
        time.sleep(0.02)
        state = mappings.get_event_source_mapping(uuid)["State"]
