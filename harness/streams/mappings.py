"""The Lambda event-source-mapping API (every source type): parsing, validation and state.

The endpoint routes ``/2015-03-31/event-source-mappings[/<UUID>]`` to ``handle()`` with the
request's account and region (its credential scope: each region has its own mappings, as in
AWS), calls ``notify_write(table)`` after each write to a table and ``notify_send()`` after each
SQS send. An enabled DynamoDB-stream mapping runs a ``harness.streams.poller.StreamPoller``, an SQS
mapping a ``harness.streams.sqs_poller.SqsPoller``; Kinesis, Kafka, Amazon MQ and DocumentDB
mappings are validated, stored and answered, never polled (their ``LastProcessingResult`` says
so). Nothing is registered in moto (moto would eat the stream).

CreateEventSourceMapping answers at once (HTTP 202, ``State: Creating``) and the mapping becomes
``Enabled`` later, as on AWS: its function's first environment is started and then its poller,
off the caller's thread (``harness.streams.launcher``); ``Enabled`` once the poller has found its source.
UpdateEventSourceMapping meanwhile is AWS's ``ResourceInUseException`` ("you tried to update an
event source mapping in the CREATING state", Lambda API reference); a delete is not (AWS names
only a delete while ``Updating``, a state no update here lingers in).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.streams.batch import (
    PollerConfig,
    PollerTimings,
    SqsFailureDestination,
)
from harness.streams.clients import RegionalClients, StreamsTransport
from harness.streams.launcher import PollerLauncher
from harness.streams.sources import DELIVERED, DYNAMODB, SQS, rules_for
from harness.streams.state import (
    MAX_TAGS,
    NOT_POLLED,
    MappingState,
    Poller,
    describe,
    parse_tags,
)
from harness.streams.types import (
    EventSourceMappingConfiguration,
    Invoker,
    ListEventSourceMappingsResponse,
)
from harness.streams.validation import ApiError, parse_create, parse_update, resolve_function

__all__ = ["EventSourceMappings"]

LOG = logging.getLogger("harness.streams.mappings")

_PATH = re.compile(r"^(?:/2015-03-31)?/event-source-mappings/?(?P<uuid>[^/]+)?/?$")
_STOP_TIMEOUT_S = 10.0


class EventSourceMappings:
    """Create/Get/List/Update/Delete event source mappings and run the pollers of those the
    harness delivers (DynamoDB streams, SQS)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account_id: str,
        runtime: Invoker,
        clock: Callable[[], float] = time.time,
        timings: PollerTimings | None = None,
        streams: StreamsTransport | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self._runtime = runtime
        self._clock = clock
        self._timings = timings or PollerTimings()
        # streams: the endpoint serves the pollers' DynamoDB Streams reads in-process (clients.py)
        self._clients = RegionalClients(endpoint_url, streams)
        self._destination = SqsFailureDestination(clients=self._clients)
        self._lock = threading.RLock()
        self._mappings: dict[str, MappingState] = {}
        self._retired: list[Poller] = []
        self._started = False
        self._launcher = PollerLauncher(
            lock=self._lock, runtime=runtime, clients=self._clients,
            destination=self._destination, timings=self._timings, clock=clock,
            wanted=self._wanted, on_stopped=self._poller_stopped)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pollers of every enabled mapping (and of those created later)."""
        with self._lock:
            self._started = True
            for mapping in self._mappings.values():
                if mapping.enabled and mapping.poller is None:
                    self._launcher.launch(mapping)

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

    def reset(self) -> list[Poller]:
        """Forget every mapping and ask its poller to stop; returns the pollers to join."""
        with self._lock:
            pollers = [m.poller for m in self._mappings.values() if m.poller is not None]
            pollers += self._retired
            self._mappings.clear()
            self._retired = []
            self._launcher.clear()
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

    def notify_send(self) -> None:
        """A message was sent to an SQS queue: wake the SQS pollers now."""
        with self._lock:
            pollers = [m.poller for m in self._mappings.values()
                       if m.config.source_type == SQS and m.poller is not None]
        for poller in pollers:
            poller.wake()

    # -- API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes, *,
               region: str | None = None,
               account_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """Serve one event-source-mapping API request in ``region`` and ``account_id`` (default:
        the endpoint's); returns (HTTP status, JSON body)."""
        scope = (region or self.region, account_id or self.account_id)
        try:
            match = _PATH.match(path)
            if match is None:
                raise ApiError(404, "ResourceNotFoundException", f"Unknown path {path}")
            mapping_id = match.group("uuid")
            method = method.upper()
            if mapping_id is None and method == "POST":
                return 202, dict(self.create_event_source_mapping(_json_body(body), *scope))
            if mapping_id is None and method == "GET":
                return 200, dict(self.list_event_source_mappings(query, *scope))
            if mapping_id is not None and method == "GET":
                return 200, dict(self.get_event_source_mapping(mapping_id, *scope))
            if mapping_id is not None and method == "PUT":
                return 202, dict(self.update_event_source_mapping(mapping_id, _json_body(body),
                                                                  *scope))
            if mapping_id is not None and method == "DELETE":
                return 202, dict(self.delete_event_source_mapping(mapping_id, *scope))
            raise ApiError(405, "MethodNotAllowedException",
                           f"{method} is not allowed on {path}")
        except ApiError as error:
            return error.status, error.body()

    def create_event_source_mapping(
        self, request: dict[str, Any], region: str | None = None, account_id: str | None = None
    ) -> EventSourceMappingConfiguration:
        """CreateEventSourceMapping: validate, store in state Creating, start polling."""
        region, account_id = region or self.region, account_id or self.account_id
        settings = parse_create(request, region, account_id)
        tags = parse_tags(request["Tags"]) if "Tags" in request else {}
        self._check_function_exists(settings.function_name, settings.function_arn)
        config = PollerConfig(uuid=str(uuid_module.uuid4()), **settings.poller_fields())
        with self._lock:
            self._check_conflict(config.event_source_arn, config.function_arn,
                                 config.function_name)
            mapping = MappingState(config=config, enabled=settings.enabled, state="Creating",
                                   region=region, account_id=account_id,
                                   table_name=_table_of(config), tags=tags)
            if config.source_type not in DELIVERED:
                mapping.last_result = NOT_POLLED.format(
                    label=rules_for(config.source_type).label)
                LOG.warning("event source mapping %s: %s", config.uuid, mapping.last_result)
            self._mappings[config.uuid] = mapping
            answer = describe(mapping)
            if not mapping.enabled:
                mapping.state = "Disabled"
            elif self._started:
                self._launcher.launch(mapping)
        LOG.info("created event source mapping %s: %s -> %s", config.uuid,
                 config.event_source_arn, config.function_arn)
        return answer

    def get_event_source_mapping(self, mapping_id: str, region: str | None = None,
                                 account_id: str | None = None
                                 ) -> EventSourceMappingConfiguration:
        """GetEventSourceMapping."""
        with self._lock:
            return describe(self._find(mapping_id, region, account_id))

    def list_event_source_mappings(self, query: dict[str, str], region: str | None = None,
                                   account_id: str | None = None
                                   ) -> ListEventSourceMappingsResponse:
        """ListEventSourceMappings with FunctionName/EventSourceArn filters and paging."""
        region, account_id = region or self.region, account_id or self.account_id
        function_arn = None
        if query.get("FunctionName"):
            function_arn = resolve_function(query["FunctionName"], region, account_id)[1]
        source = query.get("EventSourceArn") or None
        max_items = _int_query(query, "MaxItems", 100, 1, 10000)
        start = _int_query(query, "Marker", 0, 0, 2**31)
        with self._lock:
            matching = [m for m in self._mappings.values()
                        if (m.region, m.account_id) == (region, account_id)
                        and (function_arn is None or m.config.function_arn == function_arn)
                        and (source is None or m.config.event_source_arn == source)]
            page = [describe(m) for m in matching[start:start + max_items]]
        answer: ListEventSourceMappingsResponse = {"EventSourceMappings": page}
        if start + max_items < len(matching):
            answer["NextMarker"] = str(start + max_items)
        return answer

    def update_event_source_mapping(self, mapping_id: str, request: dict[str, Any],
                                    region: str | None = None, account_id: str | None = None
                                    ) -> EventSourceMappingConfiguration:
        """UpdateEventSourceMapping: settings apply at once; Enabled stops/starts the poller."""
        with self._lock:
            mapping = self._find(mapping_id, region, account_id)
            settings = parse_update(request, mapping.config, mapping.enabled, mapping.region,
                                    mapping.account_id)
            self._check_not_creating(mapping)
        if settings.function_arn != mapping.config.function_arn:
            self._check_function_exists(settings.function_name, settings.function_arn)
        with self._lock:
            mapping = self._find(mapping_id, region, account_id)
            self._check_conflict(mapping.config.event_source_arn, settings.function_arn,
                                 settings.function_name, ignore=mapping_id)
            mapping.config = replace(mapping.config, **settings.poller_fields())
            mapping.last_modified = time.time()
            mapping.reason = "USER_INITIATED"
            was_enabled, mapping.enabled = mapping.enabled, settings.enabled
            if was_enabled and not settings.enabled:
                mapping.state = "Disabling"
                self._launcher.cancel(mapping_id)  # a launch in progress starts nothing
                answer = describe(mapping)
                if mapping.poller is not None:
                    mapping.poller.request_stop()
                else:
                    mapping.state = "Disabled"
            elif settings.enabled and not was_enabled:
                mapping.state = "Enabling"
                answer = describe(mapping)
                if self._started:
                    self._launcher.launch(mapping)
            else:
                answer = describe(mapping)
                answer["State"] = "Updating"
        return answer

    def delete_event_source_mapping(self, mapping_id: str, region: str | None = None,
                                    account_id: str | None = None
                                    ) -> EventSourceMappingConfiguration:
        """DeleteEventSourceMapping: answers State Deleting; the poller stops in the background."""
        with self._lock:
            mapping = self._find(mapping_id, region, account_id)
            mapping.state = "Deleting"
            answer = describe(mapping)
            del self._mappings[mapping_id]
            self._launcher.cancel(mapping_id)
            if mapping.poller is not None:
                self._retired.append(mapping.poller)
                mapping.poller.request_stop()
        return answer

    def handle_tags(self, method: str, arn: str, tag_keys: list[str], body: bytes, *,
                    region: str | None = None,
                    account_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """TagResource (POST), ListTags (GET), UntagResource (DELETE ?tagKeys=) on a mapping's
        ARN; returns (HTTP status, JSON body)."""
        try:
            with self._lock:
                mapping = self._find(arn.rsplit(":", 1)[-1], region, account_id)
                if mapping.arn != arn:
                    raise ApiError(404, "ResourceNotFoundException",
                                   f"The resource {arn} does not exist.")
                method = method.upper()
                if method == "GET":
                    return 200, {"Tags": dict(mapping.tags)}
                if method == "POST":
                    tags = parse_tags(_json_body(body).get("Tags"))
                    if len(mapping.tags | tags) > MAX_TAGS:
                        raise ApiError(400, "InvalidParameterValueException",
                                       f"A resource can have at most {MAX_TAGS} tags")
                    mapping.tags.update(tags)
                    return 204, {}
                if method == "DELETE":
                    for key in tag_keys:
                        mapping.tags.pop(key, None)
                    return 204, {}
                raise ApiError(405, "MethodNotAllowedException", f"{method} is not allowed")
        except ApiError as error:
            return error.status, error.body()

    # -- internals -------------------------------------------------------------------------

    def _find(self, mapping_id: str, region: str | None = None,
              account_id: str | None = None) -> MappingState:
        """The mapping, if it lives in this region and account (each has its own, as in AWS)."""
        mapping = self._mappings.get(mapping_id)
        scope = (region or self.region, account_id or self.account_id)
        if mapping is None or (mapping.region, mapping.account_id) != scope:
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

    def _check_not_creating(self, mapping: MappingState) -> None:
        """AWS: "you tried to update an event source mapping in the CREATING state" is a
        ResourceInUseException (Lambda API reference). A registry not started creates nothing:
        its mappings are stored only, and updated as such."""
        if mapping.state == "Creating" and self._started:
            raise ApiError(
                400, "ResourceInUseException",
                f"Cannot update the event source mapping {mapping.config.uuid}: it is being "
                "created (State Creating). Retry once GetEventSourceMapping answers Enabled.")

    def _check_function_exists(self, name: str, arn: str) -> None:
        try:
            self._runtime.invoke(arn, b"{}", invocation_type="DryRun")
        except Exception as exc:
            if "ResourceNotFound" in type(exc).__name__:
                raise ApiError(404, "ResourceNotFoundException",
                               f"Function not found: {arn}") from exc
            LOG.debug("DryRun of %s raised %r; not treated as missing", name, exc)

    def _wanted(self, mapping: MappingState) -> bool:
        """Whether ``mapping`` should be polling now: started, enabled, and still stored."""
        return (self._started and mapping.enabled
                and self._mappings.get(mapping.config.uuid) is mapping)

    def _poller_stopped(self, mapping: MappingState, poller: Poller) -> None:
        with self._lock:
            if poller in self._retired:
                self._retired.remove(poller)
            if mapping.poller is poller:
                mapping.poller = None
                if not mapping.enabled and mapping.state == "Disabling":
                    mapping.state = "Disabled"


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


def _table_of(config: PollerConfig) -> str:
    """``arn:aws:dynamodb:r:a:table/<name>/stream/<label>`` → ``<name>`` ("" for other sources)."""
    if config.source_type != DYNAMODB:
        return ""
    return config.event_source_arn.split(":", 5)[5].split("/")[1]
