"""Parsing and validation of Create/UpdateEventSourceMapping requests (every source type).

What differs per source type (batch sizes, starting positions, which members apply) is in
``harness.streams.sources``; the members every mapping has are checked here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.streams.batch import PollerConfig
from harness.streams.sources import (
    DYNAMODB,
    SQS,
    STORED,
    SourceError,
    SourceRules,
    classify,
    rules_for,
    source_fields,
)

__all__ = ["ApiError", "MappingSettings", "parse_create", "parse_update", "resolve_function"]

_FUNCTION = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"|(?P<account2>\d{12}):function:)?(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$")
_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                  r"(?P<account>\d{12})?:(?P<resource>.+)$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")

_IGNORED = {"Tags", "KMSKeyArn", "MetricsConfig", "LoggingConfig"}  # Tags: kept by mappings.py
#: Members of every mapping (the rest depend on the source type: harness.streams.sources).
_COMMON_UPDATABLE = {
    "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds", "FilterCriteria",
}
_COMMON_CREATABLE = _COMMON_UPDATABLE | {
    "EventSourceArn", "StartingPosition", "StartingPositionTimestamp",
}
_SOURCE_SPECIFIC = {
    "ParallelizationFactor", "DestinationConfig", "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
    "FunctionResponseTypes", *STORED,
}
#: Fixed when the mapping is created.
_NOT_UPDATABLE = {
    "Topics", "Queues", "SelfManagedEventSource", "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
}


class ApiError(Exception):
    """An AWS API error: HTTP status, error type (``x-amzn-ErrorType``) and message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body Lambda answers with (``__type`` for botocore, ``Type`` as AWS sends)."""
        return {"__type": self.error_type, "Type": "User", "message": self.message}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterValueException", message)


@dataclass(frozen=True)
class MappingSettings:
    """A validated mapping request (the mapping's settings after it)."""

    function_name: str
    function_arn: str
    event_source_arn: str
    starting_position: str
    batch_size: int
    maximum_batching_window_s: int
    parallelization_factor: int
    maximum_retry_attempts: int
    maximum_record_age_s: int
    bisect_batch_on_function_error: bool
    report_batch_item_failures: bool
    on_failure_destination: str | None
    enabled: bool
    source_type: str = DYNAMODB
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific members, as sent

    def poller_fields(self) -> dict[str, Any]:
        """The fields of ``PollerConfig`` (all but ``uuid``)."""
        fields = asdict(self)
        del fields["enabled"]
        return fields


def resolve_function(value: Any, region: str, account_id: str) -> tuple[str, str]:
    """A function name, partial or full ARN → (name, ``arn:aws:lambda:<r>:<a>:function:<name>``)."""
    match = _FUNCTION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"1 validation error detected: Value {value!r} at 'functionName' failed "
                       "to satisfy constraint: Member must be a function name or ARN")
    if match.group("region") not in (None, region):
        raise _invalid(f"Function {value} is not in region {region}")
    if (match.group("account") or match.group("account2") or account_id) != account_id:
        raise _invalid(f"Function {value} is not in account {account_id}")
    qualifier = match.group("qualifier")
    if qualifier not in (None, "$LATEST"):
        raise _invalid(f"Qualifier {qualifier!r}: the local harness runs $LATEST only")
    name = match.group("name")
    return name, f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def parse_create(request: dict[str, Any], region: str, account_id: str) -> MappingSettings:
    """Validate a CreateEventSourceMapping body."""
    try:
        kind = classify(request, region)
    except SourceError as exc:
        raise _invalid(str(exc)) from None
    rules = rules_for(kind)
    _check_keys(request, _COMMON_CREATABLE, rules, "CreateEventSourceMapping")
    if "FunctionName" not in request:
        raise _invalid("FunctionName is required")
    name, arn = resolve_function(request["FunctionName"], region, account_id)
    position = _starting_position(request, rules)
    try:
        extra = source_fields(kind, request)
    except SourceError as exc:
        raise _invalid(str(exc)) from None
    return _settings(request, name, arn, str(request.get("EventSourceArn") or ""), position,
                     defaults=None, rules=rules, extra=extra)


def parse_update(request: dict[str, Any], current: PollerConfig, enabled: bool, region: str,
                 account_id: str) -> MappingSettings:
    """Validate an UpdateEventSourceMapping body against the mapping's current settings."""
    for key in ("EventSourceArn", "StartingPosition", "StartingPositionTimestamp",
                *_NOT_UPDATABLE):
        if key in request:
            raise _invalid(f"{key} cannot be changed on an existing mapping; create a new one")
    rules = rules_for(current.source_type)
    _check_keys(request, _COMMON_UPDATABLE, rules, "UpdateEventSourceMapping")
    name, arn = current.function_name, current.function_arn
    if "FunctionName" in request:
        name, arn = resolve_function(request["FunctionName"], region, account_id)
    defaults = MappingSettings(enabled=enabled, **{
        key: value for key, value in asdict(current).items() if key != "uuid"})
    try:
        extra = source_fields(current.source_type, request, current.extra)
    except SourceError as exc:
        raise _invalid(str(exc)) from None
    return _settings(request, name, arn, current.event_source_arn, current.starting_position,
                     defaults=defaults, rules=rules, extra=extra)


def _check_keys(request: dict[str, Any], common: set[str], rules: SourceRules,
                action: str) -> None:
    for key in request:
        if key in common or key in rules.settings or key in _IGNORED:
            continue
        if key in _SOURCE_SPECIFIC:
            raise _invalid(f"{key} does not apply to {rules.label} event sources")
        raise _invalid(f"Unknown parameter {key!r} for {action}")


def _starting_position(request: dict[str, Any], rules: SourceRules) -> str:
    position = request.get("StartingPosition")
    if rules.starting_position == "forbidden":
        if position is not None or "StartingPositionTimestamp" in request:
            raise _invalid(f"Unsupported starting position for arn type: {rules.label} event "
                           "sources take no StartingPosition")
        return ""
    if position is None:
        raise _invalid(f"StartingPosition is required for {rules.label} event sources "
                       f"({' or '.join(rules.positions)})")
    if position == "AT_TIMESTAMP" and "AT_TIMESTAMP" not in rules.positions:
        raise _invalid(f"Unsupported starting position for arn type: {rules.label} accepts "
                       f"{' or '.join(rules.positions)}, not AT_TIMESTAMP")
    if position not in rules.positions:
        raise _invalid(f"StartingPosition must be {' or '.join(rules.positions)}, got "
                       f"{position!r}")
    if (position == "AT_TIMESTAMP") != ("StartingPositionTimestamp" in request):
        raise _invalid("StartingPositionTimestamp goes with StartingPosition AT_TIMESTAMP, "
                       "and only with it")
    return str(position)


def _settings(request: dict[str, Any], name: str, arn: str, source: str, position: str,
              defaults: MappingSettings | None, rules: SourceRules,
              extra: dict[str, Any]) -> MappingSettings:
    def pick(key: str, fallback: Any) -> Any:
        return request[key] if key in request else fallback

    d = defaults
    _filter_criteria(request.get("FilterCriteria"))
    tumbling = _int(request, "TumblingWindowInSeconds", 0, 0, 900)
    if tumbling:
        raise _invalid("TumblingWindowInSeconds is not supported by the local harness")
    record_age = _int(request, "MaximumRecordAgeInSeconds",
                      d.maximum_record_age_s if d else -1, -1, 604800)
    if 0 <= record_age < 60:
        raise _invalid(f"1 validation error detected: Value '{record_age}' at "
                       "'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must "
                       "be -1 or between 60 and 604800")
    max_batch = 10 if rules.kind == SQS and source.endswith(".fifo") else 10000
    batch_size = _int(request, "BatchSize", d.batch_size if d else rules.default_batch, 1,
                      max_batch)
    window = _int(request, "MaximumBatchingWindowInSeconds",
                  d.maximum_batching_window_s if d else 0, 0, 300)
    if rules.kind == SQS and batch_size > 10 and window < 1:
        raise _invalid("Maximum batch window in seconds must be greater than 0 if maximum "
                       "batch size is greater than 10")
    return MappingSettings(
        source_type=rules.kind,
        extra=extra,
        function_name=name,
        function_arn=arn,
        event_source_arn=source,
        starting_position=position,
        batch_size=batch_size,
        maximum_batching_window_s=window,
        parallelization_factor=_int(request, "ParallelizationFactor",
                                    d.parallelization_factor if d else 1, 1, 10),
        maximum_retry_attempts=_int(request, "MaximumRetryAttempts",
                                    d.maximum_retry_attempts if d else -1, -1, 10000),
        maximum_record_age_s=record_age,
        bisect_batch_on_function_error=_bool(
            pick("BisectBatchOnFunctionError", d.bisect_batch_on_function_error if d else False),
            "BisectBatchOnFunctionError"),
        report_batch_item_failures=_response_types(
            request, d.report_batch_item_failures if d else False),
        on_failure_destination=_destination(
            request, d.on_failure_destination if d else None),
        enabled=_bool(pick("Enabled", d.enabled if d else True), "Enabled"),
    )


def _int(request: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    if key not in request:
        return default
    value = request[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key} must be an integer, got {value!r}")
    if not low <= value <= high:
        camel = key[0].lower() + key[1:]
        raise _invalid(f"1 validation error detected: Value '{value}' at '{camel}' failed to "
                       f"satisfy constraint: Member must have value between {low} and {high}")
    return int(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{key} must be true or false, got {value!r}")
    return value


def _response_types(request: dict[str, Any], default: bool) -> bool:
    if "FunctionResponseTypes" not in request:
        return default
    types = request["FunctionResponseTypes"]
    if types is None:
        return False
    if not isinstance(types, list) or len(types) > 1 or any(
            t != "ReportBatchItemFailures" for t in types):
        raise _invalid(f"FunctionResponseTypes must be [] or [\"ReportBatchItemFailures\"], "
                       f"got {types!r}")
    return bool(types)


def _destination(request: dict[str, Any], default: str | None) -> str | None:
    if "DestinationConfig" not in request:
        return default
    config = request["DestinationConfig"]
    if not isinstance(config, dict):
        raise _invalid("DestinationConfig must be an object")
    for key, value in config.items():
        if key == "OnSuccess" and value:
            raise _invalid("OnSuccess is not supported in CreateEventSourceMapping or "
                           "UpdateEventSourceMapping requests")
        if key not in ("OnFailure", "OnSuccess"):
            raise _invalid(f"Unknown DestinationConfig member {key!r}")
    on_failure = config.get("OnFailure") or {}
    if not isinstance(on_failure, dict):
        raise _invalid("DestinationConfig.OnFailure must be an object")
    arn = on_failure.get("Destination")
    if arn in (None, ""):
        return None
    match = _ARN.match(arn) if isinstance(arn, str) else None
    if match is None:
        raise _invalid(f"DestinationConfig.OnFailure.Destination {arn!r} is not a valid ARN")
    if match.group("service") != "sqs" or not _QUEUE_NAME.match(match.group("resource")):
        raise _invalid(f"Unsupported on-failure destination {arn}: the local harness sends "
                       "to SQS queues only (arn:aws:sqs:<region>:<account>:<queue>)")
    return str(arn)


def _filter_criteria(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid("FilterCriteria must be an object")
    if value.get("Filters"):
        raise _invalid("FilterCriteria with Filters is not supported by the local harness")
