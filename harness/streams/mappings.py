"""The Lambda event-source-mapping API (DynamoDB streams only): parsing, validation and state.

The endpoint routes ``/2015-03-31/event-source-mappings[/<UUID>]`` to ``handle()`` and calls
``notify_write(table)`` after each write to a table; each enabled mapping runs a
``harness.streams.poller.StreamPoller``. Nothing is registered in moto (moto would eat the stream).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.config import Config

from harness.streams.batch import (
    RESULT_NONE,
    PollerConfig,
    PollerTimings,
    SqsFailureDestination,
)
from harness.streams.poller import CheckpointStore, StreamPoller
from harness.streams.types import (
    EventSourceMappingConfiguration,
    Invoker,
    ListEventSourceMappingsResponse,
    OnFailureDestination,
)
from harness.streams.validation import ApiError, parse_create, parse_update, resolve_function

__all__ = ["EventSourceMappings"]

LOG = logging.getLogger("harness.streams.mappings")

_PATH = re.compile(r"^(?:/2015-03-31)?/event-source-mappings/?(?P<uuid>[^/]+)?/?$")
_STOP_TIMEOUT_S = 10.0


@dataclass
class _Mapping:
    config: PollerConfig
    enabled: bool
    state: str
    table_name: str
    last_modified: float = field(default_factory=time.time)
    last_result: str = RESULT_NONE
    reason: str = "USER_INITIATED"
    checkpoints: CheckpointStore = field(default_factory=CheckpointStore)
    poller: StreamPoller | None = None


class EventSourceMappings:
    """Create/Get/List/Update/Delete DynamoDB stream mappings and run their pollers."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account_id: str,
        runtime: Invoker,
        clock: Callable[[], float] = time.time,
        timings: PollerTimings | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self._runtime = runtime
        self._clock = clock
        self._timings = timings or PollerTimings()
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )
        config = Config(retries={"max_attempts": 2, "mode": "standard"},
                        max_pool_connections=64, connect_timeout=5, read_timeout=60)
        self._streams = session.client("dynamodbstreams", endpoint_url=endpoint_url,
                                       config=config)
        self._destination = SqsFailureDestination(
            session.client("sqs", endpoint_url=endpoint_url, config=config))
        self._lock = threading.RLock()
        self._mappings: dict[str, _Mapping] = {}
        self._retired: list[StreamPoller] = []
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pollers of every enabled mapping (and of those created later)."""
        with self._lock:
            self._started = True
            for mapping in self._mappings.values():
                if mapping.enabled and mapping.poller is None:
                    self._launch(mapping)

    def stop(self) -> None:
        """Stop every poller and wait for its threads (checkpoints are kept)."""
        with self._lock:
            self._started = False
            pollers = [m.poller for m in self._mappings.values() if m.poller is not None]
            pollers += self._retired
        for poller in pollers:
            poller.request_stop()
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for poller in pollers:
            poller.join(max(0.0, deadline - time.monotonic()))
            if poller.is_alive():
                LOG.warning("a stream poller did not stop within %.0f s (an invoke is still "
                            "running); its threads are daemons", _STOP_TIMEOUT_S)

    def reset(self) -> list[StreamPoller]:
        """Forget every mapping and ask its poller to stop; returns the pollers to join."""
        with self._lock:
            pollers = [m.poller for m in self._mappings.values() if m.poller is not None]
            pollers += self._retired
            self._mappings.clear()
            self._retired = []
        for poller in pollers:
            poller.request_stop()
        return pollers

    def notify_write(self, table_name: str) -> None:
        """A write to ``table_name`` happened: wake the pollers of its stream now."""
        with self._lock:
            pollers = [m.poller for m in self._mappings.values()
                       if m.table_name == table_name and m.poller is not None]
        for poller in pollers:
            poller.wake()

    # -- API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        """Serve one event-source-mapping API request; returns (HTTP status, JSON body)."""
        try:
            match = _PATH.match(path)
            if match is None:
                raise ApiError(404, "ResourceNotFoundException", f"Unknown path {path}")
            mapping_id = match.group("uuid")
            method = method.upper()
            if mapping_id is None and method == "POST":
                return 202, dict(self.create_event_source_mapping(_json_body(body)))
            if mapping_id is None and method == "GET":
                return 200, dict(self.list_event_source_mappings(query))
            if mapping_id is not None and method == "GET":
                return 200, dict(self.get_event_source_mapping(mapping_id))
            if mapping_id is not None and method == "PUT":
                return 202, dict(self.update_event_source_mapping(mapping_id, _json_body(body)))
            if mapping_id is not None and method == "DELETE":
                return 202, dict(self.delete_event_source_mapping(mapping_id))
            raise ApiError(405, "MethodNotAllowedException",
                           f"{method} is not allowed on {path}")
        except ApiError as error:
            return error.status, error.body()

    def create_event_source_mapping(
        self, request: dict[str, Any]
    ) -> EventSourceMappingConfiguration:
        """CreateEventSourceMapping: validate, store in state Creating, start polling."""
        settings = parse_create(request, self.region, self.account_id)
        self._check_function_exists(settings.function_name, settings.function_arn)
        config = PollerConfig(uuid=str(uuid_module.uuid4()), **settings.poller_fields())
        with self._lock:
            self._check_conflict(config.event_source_arn, config.function_arn,
                                 config.function_name)
            mapping = _Mapping(config=config, enabled=settings.enabled, state="Creating",
                               table_name=_table_of(config.event_source_arn))
            self._mappings[config.uuid] = mapping
            answer = self._describe(mapping)
            if not mapping.enabled:
                mapping.state = "Disabled"
            elif self._started:
                self._launch(mapping)
        LOG.info("created event source mapping %s: %s -> %s", config.uuid,
                 config.event_source_arn, config.function_arn)
        return answer

    def get_event_source_mapping(self, mapping_id: str) -> EventSourceMappingConfiguration:
        """GetEventSourceMapping."""
        with self._lock:
            return self._describe(self._find(mapping_id))

    def list_event_source_mappings(self, query: dict[str, str]) -> ListEventSourceMappingsResponse:
        """ListEventSourceMappings with FunctionName/EventSourceArn filters and paging."""
        function_arn = None
        if query.get("FunctionName"):
            function_arn = resolve_function(query["FunctionName"], self.region,
                                            self.account_id)[1]
        source = query.get("EventSourceArn") or None
        max_items = _int_query(query, "MaxItems", 100, 1, 10000)
        start = _int_query(query, "Marker", 0, 0, 2**31)
        with self._lock:
            matching = [m for m in self._mappings.values()
                        if (function_arn is None or m.config.function_arn == function_arn)
                        and (source is None or m.config.event_source_arn == source)]
            page = [self._describe(m) for m in matching[start:start + max_items]]
        answer: ListEventSourceMappingsResponse = {"EventSourceMappings": page}
        if start + max_items < len(matching):
            answer["NextMarker"] = str(start + max_items)
        return answer

    def update_event_source_mapping(self, mapping_id: str,
                                    request: dict[str, Any]) -> EventSourceMappingConfiguration:
        """UpdateEventSourceMapping: settings apply at once; Enabled stops/starts the poller."""
        with self._lock:
            mapping = self._find(mapping_id)
            settings = parse_update(request, mapping.config, mapping.enabled, self.region,
                                    self.account_id)
        if settings.function_arn != mapping.config.function_arn:
            self._check_function_exists(settings.function_name, settings.function_arn)
        with self._lock:
            mapping = self._find(mapping_id)
            self._check_conflict(mapping.config.event_source_arn, settings.function_arn,
                                 settings.function_name, ignore=mapping_id)
            mapping.config = replace(mapping.config, **settings.poller_fields())
            mapping.last_modified = time.time()
            mapping.reason = "USER_INITIATED"
            was_enabled, mapping.enabled = mapping.enabled, settings.enabled
            if was_enabled and not settings.enabled:
                mapping.state = "Disabling"
                answer = self._describe(mapping)
                if mapping.poller is not None:
                    mapping.poller.request_stop()
                else:
                    mapping.state = "Disabled"
            elif settings.enabled and not was_enabled:
                mapping.state = "Enabling"
                answer = self._describe(mapping)
                if self._started:
                    self._launch(mapping)
            else:
                answer = self._describe(mapping)
                answer["State"] = "Updating"
        return answer

    def delete_event_source_mapping(self, mapping_id: str) -> EventSourceMappingConfiguration:
        """DeleteEventSourceMapping: answers State Deleting; the poller stops in the background."""
        with self._lock:
            mapping = self._find(mapping_id)
            mapping.state = "Deleting"
            answer = self._describe(mapping)
            del self._mappings[mapping_id]
            if mapping.poller is not None:
                self._retired.append(mapping.poller)
                mapping.poller.request_stop()
        return answer

    # -- internals -------------------------------------------------------------------------

    def _find(self, mapping_id: str) -> _Mapping:
        mapping = self._mappings.get(mapping_id)
        if mapping is None:
            raise ApiError(404, "ResourceNotFoundException",
                           "The resource you requested does not exist.")
        return mapping

    def _check_conflict(self, source: str, function_arn: str, function_name: str,
                        ignore: str | None = None) -> None:
        for other in self._mappings.values():
            if (other.config.uuid != ignore and other.config.event_source_arn == source
                    and other.config.function_arn == function_arn):
                raise ApiError(
                    409, "ResourceConflictException",
                    f"The event source arn ({source}) and function ({function_name}) provided "
                    f"mapping already exists. Please update or delete the existing mapping "
                    f"with UUID {other.config.uuid}")

    def _check_function_exists(self, name: str, arn: str) -> None:
        try:
            self._runtime.invoke(name, b"{}", invocation_type="DryRun")
        except Exception as exc:
            if "ResourceNotFound" in type(exc).__name__:
                raise ApiError(404, "ResourceNotFoundException",
                               f"Function not found: {arn}") from exc
            LOG.debug("DryRun of %s raised %r; not treated as missing", name, exc)

    def _launch(self, mapping: _Mapping) -> None:
        """Start a poller for ``mapping`` (after the previous one, if any, has stopped)."""
        cell: list[StreamPoller] = []
        poller = StreamPoller(
            config=lambda: mapping.config,
            streams_client=self._streams,
            invoker=self._runtime,
            destination=self._destination,
            checkpoints=mapping.checkpoints,
            on_ready=lambda: self._poller_ready(mapping, cell[0]),
            on_stopped=lambda: self._poller_stopped(mapping, cell[0]),
            on_result=lambda text: self._poller_result(mapping, text),
            clock=self._clock,
            timings=self._timings,
            previous=mapping.poller,
        )
        cell.append(poller)
        mapping.poller = poller
        poller.start()
        prewarm = getattr(self._runtime, "prewarm", None)
        if prewarm is not None and mapping.enabled:
            try:  # its first batch follows at once: let the function initialise meanwhile
                prewarm(mapping.config.function_name)
            except Exception:  # noqa: BLE001 - the invocation will start one (and say why not)
                LOG.debug("prewarming %s failed", mapping.config.function_name, exc_info=True)

    def _poller_ready(self, mapping: _Mapping, poller: StreamPoller) -> None:
        with self._lock:
            if mapping.poller is poller and mapping.enabled and mapping.state != "Deleting":
                mapping.state = "Enabled"

    def _poller_stopped(self, mapping: _Mapping, poller: StreamPoller) -> None:
        with self._lock:
            if poller in self._retired:
                self._retired.remove(poller)
            if mapping.poller is poller:
                mapping.poller = None
                if not mapping.enabled and mapping.state == "Disabling":
                    mapping.state = "Disabled"

    def _poller_result(self, mapping: _Mapping, text: str) -> None:
        with self._lock:
            mapping.last_result = text

    def _describe(self, mapping: _Mapping) -> EventSourceMappingConfiguration:
        config = mapping.config
        destination: OnFailureDestination = {}
        if config.on_failure_destination:
            destination["Destination"] = config.on_failure_destination
        return {
            "UUID": config.uuid,
            "StartingPosition": config.starting_position,
            "BatchSize": config.batch_size,
            "MaximumBatchingWindowInSeconds": config.maximum_batching_window_s,
            "ParallelizationFactor": config.parallelization_factor,
            "EventSourceArn": config.event_source_arn,
            "FunctionArn": config.function_arn,
            "LastModified": mapping.last_modified,
            "LastProcessingResult": mapping.last_result,
            "State": mapping.state,
            "StateTransitionReason": mapping.reason,
            "DestinationConfig": {"OnFailure": destination},
            "MaximumRecordAgeInSeconds": config.maximum_record_age_s,
            "BisectBatchOnFunctionError": config.bisect_batch_on_function_error,
            "MaximumRetryAttempts": config.maximum_retry_attempts,
            "TumblingWindowInSeconds": 0,
            "FunctionResponseTypes": (["ReportBatchItemFailures"]
                                      if config.report_batch_item_failures else []),
            "EventSourceMappingArn": (f"arn:aws:lambda:{self.region}:{self.account_id}:"
                                      f"event-source-mapping:{config.uuid}"),
        }


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "InvalidRequestContentException",
                       f"Could not parse request body into json: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ApiError(400, "InvalidRequestContentException",
                       "The request body must be a JSON object")
    return parsed


def _int_query(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "InvalidParameterValueException",
                       f"{name} must be an integer between {low} and {high}, got {raw!r}")
    return value


def _table_of(stream_arn: str) -> str:
    """``arn:aws:dynamodb:r:a:table/<name>/stream/<label>`` → ``<name>``."""
    return stream_arn.split(":", 5)[5].split("/")[1]
