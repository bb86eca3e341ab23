"""Starting an event source mapping's poller, off the API caller's thread.

CreateEventSourceMapping (and an update that enables a mapping) answers at once, as on AWS;
then its function's first environment is started and, once that is ready, its poller (a
``StreamPoller`` for a DynamoDB stream, an ``SqsPoller`` for a queue). The environment comes
first: records already in the stream (TRIM_HORIZON) would otherwise be invoked while it is
forked, and start a second one. The mapping goes ``Enabled`` when its poller has found its
source. A launch that is no longer wanted when it gets there (the mapping was deleted,
disabled, relaunched, reset or stopped meanwhile) starts nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.streams.batch import PollerTimings, SqsFailureDestination
from harness.streams.clients import RegionalClients
from harness.streams.poller import StreamPoller
from harness.streams.sources import DELIVERED, SQS
from harness.streams.sqs_poller import SqsPoller
from harness.streams.state import MappingState, Poller
from harness.streams.types import Invoker

__all__ = ["PollerLauncher"]

LOG = logging.getLogger("harness.streams.mappings")


class PollerLauncher:
    """Launches the pollers of one ``EventSourceMappings`` registry, under its lock."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        runtime: Invoker,
        clients: RegionalClients,
        destination: SqsFailureDestination,
        timings: PollerTimings,
        clock: Callable[[], float] = time.time,
        wanted: Callable[[MappingState], bool],
        on_stopped: Callable[[MappingState, Poller], None],
    ) -> None:
        self._lock = lock
        self._runtime = runtime
        self._clients = clients
        self._destination = destination
        self._timings = timings
        self._clock = clock
        self._wanted = wanted
        self._on_stopped = on_stopped
        self._launches: dict[str, object] = {}  # UUID -> the token of its launch in progress

    def cancel(self, uuid: str) -> None:
        """Forget ``uuid``'s launch in progress, if any: it starts nothing (caller holds the lock)."""
        self._launches.pop(uuid, None)

    def clear(self) -> None:
        """Forget every launch in progress (caller holds the lock)."""
        self._launches.clear()

    def launch(self, mapping: MappingState) -> None:
        """Start ``mapping``'s function environment, then its poller, in a thread of their own
        (the API call that asked for it answers at once; the caller holds the registry's lock)."""
        config = mapping.config
        if config.source_type not in DELIVERED:
            mapping.state = "Enabled"  # stored only: nothing to start (LastProcessingResult says)
            return
        token = object()
        self._launches[config.uuid] = token
        threading.Thread(target=self._start_poller, args=(mapping, token), daemon=True,
                         name=f"esm-launch-{config.uuid[:8]}").start()

    def _launching(self, mapping: MappingState, token: object) -> bool:
        """True while the launch ``token`` of ``mapping`` is still wanted (not deleted,
        disabled, relaunched, reset or stopped since)."""
        return self._launches.get(mapping.config.uuid) is token and self._wanted(mapping)

    def _start_poller(self, mapping: MappingState, token: object) -> None:
        prewarm = getattr(self._runtime, "prewarm", None)
        with self._lock:
            wanted = self._launching(mapping, token)
        if prewarm is not None and wanted:
            # before the poller starts: records already in the stream (TRIM_HORIZON) would
            # otherwise be invoked while this environment is forked, and start a second one
            try:  # its first batch follows at once: let the function initialise meanwhile
                prewarm(mapping.config.function_arn)
            except Exception:  # noqa: BLE001 - the invocation will start one (and say why not)
                LOG.debug("prewarming %s failed", mapping.config.function_name, exc_info=True)
        with self._lock:
            if not self._launching(mapping, token):
                return
            del self._launches[mapping.config.uuid]
            poller = self._new_poller(mapping)
            mapping.poller = poller
            poller.start()

    def _new_poller(self, mapping: MappingState) -> Poller:
        """A poller for ``mapping`` (it starts after the previous one, if any, has stopped)."""
        config = mapping.config
        cell: list[Poller] = []
        poller: Poller
        callbacks: dict[str, Any] = {
            "on_ready": lambda: self._poller_ready(mapping, cell[0]),
            "on_stopped": lambda: self._on_stopped(mapping, cell[0]),
            "on_result": lambda text: self._poller_result(mapping, text),
        }
        if config.source_type == SQS:
            poller = SqsPoller(config=lambda: mapping.config, invoker=self._runtime,
                               sqs_client=self._clients("sqs", mapping.region, mapping.account_id),
                               timings=self._timings, previous=mapping.poller, **callbacks)
        else:
            poller = StreamPoller(
                config=lambda: mapping.config,
                streams_client=self._clients("dynamodbstreams", mapping.region,
                                              mapping.account_id, config.function_arn),
                invoker=self._runtime,
                destination=self._destination,
                checkpoints=mapping.checkpoints,
                clock=self._clock,
                timings=self._timings,
                previous=mapping.poller if isinstance(mapping.poller, StreamPoller) else None,
                **callbacks,
            )
        cell.append(poller)
        return poller

    def _poller_ready(self, mapping: MappingState, poller: Poller) -> None:
        with self._lock:
            if mapping.poller is poller and mapping.enabled and mapping.state != "Deleting":
                mapping.state = "Enabled"

    def _poller_result(self, mapping: MappingState, text: str) -> None:
        with self._lock:
            mapping.last_result = text
