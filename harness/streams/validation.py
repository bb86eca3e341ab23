"""Parsing and validation of Create/UpdateEventSourceMapping requests (DynamoDB stream sources)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.streams.batch import PollerConfig

__all__ = ["ApiError", "MappingSettings", "parse_create", "parse_update", "resolve_function"]

_FUNCTION = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"|(?P<account2>\d{12}):function:)?(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$")
_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                  r"(?P<account>\d{12})?:(?P<resource>.+)$")
_STREAM_RESOURCE = re.compile(r"^table/[A-Za-z0-9_.-]{3,255}/stream/[^/]+$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")

_IGNORED = {"Tags", "KMSKeyArn", "MetricsConfig", "LoggingConfig"}
_NOT_FOR_STREAMS = {
    "Topics", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
    "DocumentDBEventSourceConfig", "ScalingConfig", "ProvisionedPollerConfig",
}
_UPDATABLE = {
    "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor", "DestinationConfig", "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
    "FunctionResponseTypes", "FilterCriteria",
}
_CREATABLE = _UPDATABLE | {"EventSourceArn", "StartingPosition", "StartingPositionTimestamp"}


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
    _check_keys(request, _CREATABLE, "CreateEventSourceMapping")
    if "FunctionName" not in request:
        raise _invalid("FunctionName is required")
    name, arn = resolve_function(request["FunctionName"], region, account_id)
    source = _stream_arn(request.get("EventSourceArn"), region)
    position = request.get("StartingPosition")
    if position is None:
        raise _invalid("StartingPosition is required for DynamoDB stream event sources "
                       "(TRIM_HORIZON or LATEST)")
    if position == "AT_TIMESTAMP" or "StartingPositionTimestamp" in request:
        raise _invalid("Unsupported starting position for arn type: DynamoDB streams accept "
                       "TRIM_HORIZON or LATEST, not AT_TIMESTAMP")
    if position not in ("TRIM_HORIZON", "LATEST"):
        raise _invalid(f"StartingPosition must be TRIM_HORIZON or LATEST, got {position!r}")
    return _settings(request, name, arn, source, position, defaults=None)


def parse_update(request: dict[str, Any], current: PollerConfig, enabled: bool, region: str,
                 account_id: str) -> MappingSettings:
    """Validate an UpdateEventSourceMapping body against the mapping's current settings."""
    for key in ("EventSourceArn", "StartingPosition", "StartingPositionTimestamp"):
        if key in request:
            raise _invalid(f"{key} cannot be changed on an existing mapping; create a new one")
    _check_keys(request, _UPDATABLE, "UpdateEventSourceMapping")
    name, arn = current.function_name, current.function_arn
    if "FunctionName" in request:
        name, arn = resolve_function(request["FunctionName"], region, account_id)
    defaults = MappingSettings(enabled=enabled, **{
        key: value for key, value in asdict(current).items() if key != "uuid"})
    return _settings(request, name, arn, current.event_source_arn, current.starting_position,
                     defaults=defaults)


def _check_keys(request: dict[str, Any], allowed: set[str], action: str) -> None:
    for key in request:
        if key in _NOT_FOR_STREAMS:
            raise _invalid(f"{key} does not apply to DynamoDB stream event sources")
        if key not in allowed and key not in _IGNORED:
            raise _invalid(f"Unknown parameter {key!r} for {action}")


def _stream_arn(value: Any, region: str) -> str:
    if value is None:
        raise _invalid("EventSourceArn is required")
    match = _ARN.match(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"EventSourceArn {value!r} is not a valid ARN")
    if match.group("service") != "dynamodb" or not _STREAM_RESOURCE.match(
            match.group("resource")):
        raise _invalid(f"Unsupported event source {value}: the local harness maps DynamoDB "
                       "streams only (arn:aws:dynamodb:<region>:<account>:table/<t>/stream/<l>)")
    if match.group("region") != region:
        raise _invalid(f"The stream {value} is not in the function's region {region}")
    return str(value)


def _settings(request: dict[str, Any], name: str, arn: str, source: str, position: str,
              defaults: MappingSettings | None) -> MappingSettings:
    def pick(key: str, fallback: Any) -> Any:
        return request[key] if key in request else fallback

    d = defaults
    _filter_criteria(request.get("FilterCriteria"))
    window = _int(request, "TumblingWindowInSeconds", 0, 0, 900)
    if window:
        raise _invalid("TumblingWindowInSeconds is not supported by the local harness")
    record_age = _int(request, "MaximumRecordAgeInSeconds",
                      d.maximum_record_age_s if d else -1, -1, 604800)
    if 0 <= record_age < 60:
        raise _invalid(f"1 validation error detected: Value '{record_age}' at "
                       "'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must "
                       "be -1 or between 60 and 604800")
    return MappingSettings(
        function_name=name,
        function_arn=arn,
        event_source_arn=source,
        starting_position=position,
        batch_size=_int(request, "BatchSize", d.batch_size if d else 100, 1, 10000),
        maximum_batching_window_s=_int(request, "MaximumBatchingWindowInSeconds",
                                       d.maximum_batching_window_s if d else 0, 0, 300),
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
            raise _invalid("OnSuccess destinations are not supported for DynamoDB stream "
                           "event sources")
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
