"""The event source types Lambda accepts, and what CreateEventSourceMapping allows for each.

AWS's rules (Lambda API reference, CreateEventSourceMapping / EventSourceMappingConfiguration):
- BatchSize 1-10,000; default 10 for SQS, 100 for the rest; SQS FIFO queues at most 10; over 10
  needs MaximumBatchingWindowInSeconds >= 1 (0-300 s, SQS and streams).
- StartingPosition is required for streams (Kinesis, DynamoDB Streams) and Kafka (Amazon MSK,
  self-managed) and DocumentDB, and not accepted for SQS and Amazon MQ; AT_TIMESTAMP (with
  StartingPositionTimestamp) only for Kinesis, DocumentDB, MSK and self-managed Kafka.
- Retry, bisect, record age, parallelization, tumbling windows and on-failure destinations: streams
  (and, for destinations and retries, Kafka). ScalingConfig: SQS only. Topics: Kafka (one);
  Queues: Amazon MQ (one, with SourceAccessConfigurations); DocumentDBEventSourceConfig:
  DocumentDB (DatabaseName required). Self-managed Kafka has no EventSourceArn but a
  SelfManagedEventSource with KAFKA_BOOTSTRAP_SERVERS.

The local harness delivers DynamoDB Streams and SQS; the other kinds are validated, stored and
answered through the whole API, but never polled (:data:`DELIVERED`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DELIVERED",
    "DOCUMENTDB",
    "DYNAMODB",
    "KAFKA",
    "KINESIS",
    "MQ",
    "SELF_MANAGED_KAFKA",
    "SQS",
    "SourceRules",
    "classify",
    "rules_for",
    "source_fields",
]

DYNAMODB = "dynamodb"
KINESIS = "kinesis"
SQS = "sqs"
KAFKA = "kafka"  # Amazon MSK
SELF_MANAGED_KAFKA = "self-managed-kafka"
MQ = "mq"
DOCUMENTDB = "documentdb"
#: The kinds whose records the harness delivers to the function; the others are only stored.
DELIVERED = frozenset({DYNAMODB, SQS})

_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                  r"(?P<account>\d{12})?:(?P<resource>.+)$")
_RESOURCES = {
    DYNAMODB: ("dynamodb", re.compile(r"^table/[A-Za-z0-9_.-]{3,255}/stream/[^/]+$")),
    KINESIS: ("kinesis", re.compile(r"^stream/[A-Za-z0-9_.-]{1,128}(/consumer/[^/]+)?$")),
    SQS: ("sqs", re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")),
    KAFKA: ("kafka", re.compile(r"^cluster/[A-Za-z0-9-]{1,64}/[A-Za-z0-9-]+$")),
    MQ: ("mq", re.compile(r"^broker:[A-Za-z0-9_-]{1,50}:b-[A-Za-z0-9-]+$")),
    DOCUMENTDB: ("rds", re.compile(r"^cluster:[A-Za-z][A-Za-z0-9-]{0,62}$")),
}
_STREAM_SETTINGS = frozenset({
    "ParallelizationFactor", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
    "MaximumRetryAttempts", "TumblingWindowInSeconds", "DestinationConfig",
})
_KAFKA_SETTINGS = frozenset({
    "Topics", "SourceAccessConfigurations", "DestinationConfig", "ProvisionedPollerConfig",
    "MaximumRetryAttempts", "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds",
    "FunctionResponseTypes",
})


@dataclass(frozen=True)
class SourceRules:
    """What one kind of event source accepts."""

    kind: str
    label: str  # as AWS's messages name it
    default_batch: int
    starting_position: str  # "required" | "forbidden"
    positions: tuple[str, ...]
    settings: frozenset[str]  # request members beyond the common ones
    required: tuple[str, ...] = ()

    @property
    def is_stream(self) -> bool:
        """Kinesis and DynamoDB Streams: shards, checkpoints, retries, bisect."""
        return self.kind in (DYNAMODB, KINESIS)


_RULES = {
    DYNAMODB: SourceRules(DYNAMODB, "DynamoDB Streams", 100, "required",
                          ("TRIM_HORIZON", "LATEST"),
                          _STREAM_SETTINGS | {"FunctionResponseTypes"}),
    KINESIS: SourceRules(KINESIS, "Kinesis", 100, "required",
                         ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                         _STREAM_SETTINGS | {"FunctionResponseTypes"}),
    SQS: SourceRules(SQS, "SQS", 10, "forbidden", (),
                     frozenset({"FunctionResponseTypes", "ScalingConfig"})),
    KAFKA: SourceRules(KAFKA, "Amazon MSK", 100, "required",
                       ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                       _KAFKA_SETTINGS | {"AmazonManagedKafkaEventSourceConfig"},
                       required=("Topics",)),
    SELF_MANAGED_KAFKA: SourceRules(SELF_MANAGED_KAFKA, "self-managed Apache Kafka", 100,
                                    "required", ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                                    _KAFKA_SETTINGS | {"SelfManagedEventSource",
                                                       "SelfManagedKafkaEventSourceConfig"},
                                    required=("Topics", "SelfManagedEventSource")),
    MQ: SourceRules(MQ, "Amazon MQ", 100, "forbidden", (),
                    frozenset({"Queues", "SourceAccessConfigurations"}),
                    required=("Queues", "SourceAccessConfigurations")),
    DOCUMENTDB: SourceRules(DOCUMENTDB, "DocumentDB", 100, "required",
                            ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                            frozenset({"DocumentDBEventSourceConfig"}),
                            required=("DocumentDBEventSourceConfig",)),
}
#: Request members kept verbatim and answered back (source-specific configuration).
STORED = ("Topics", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource",
          "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
          "DocumentDBEventSourceConfig", "ScalingConfig", "ProvisionedPollerConfig")


class SourceError(ValueError):
    """The request does not fit its event source (an InvalidParameterValueException)."""


def rules_for(kind: str) -> SourceRules:
    """The rules of one kind (see the constants)."""
    return _RULES[kind]


def classify(request: dict[str, Any], region: str) -> str:
    """The kind of event source a CreateEventSourceMapping request names."""
    arn = request.get("EventSourceArn")
    if arn is None:
        if "SelfManagedEventSource" in request:
            return SELF_MANAGED_KAFKA
        raise SourceError("EventSourceArn is required (or SelfManagedEventSource for a "
                          "self-managed Apache Kafka cluster)")
    match = _ARN.match(arn) if isinstance(arn, str) else None
    if match is None:
        raise SourceError(f"EventSourceArn {arn!r} is not a valid ARN")
    for kind, (service, resource) in _RESOURCES.items():
        if match.group("service") == service and resource.match(match.group("resource")):
            if match.group("region") != region:
                raise SourceError(f"The event source {arn} is not in the function's region "
                                  f"{region}")
            return kind
    raise SourceError(
        f"Unsupported event source {arn}: Lambda maps DynamoDB streams, Kinesis streams, SQS "
        "queues, Amazon MSK clusters, Amazon MQ brokers and DocumentDB clusters (or a "
        "self-managed Kafka cluster given by SelfManagedEventSource)")


def source_fields(kind: str, request: dict[str, Any],
                  current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate the members only some kinds take; returns those to store (with ``current``'s)."""
    rules = _RULES[kind]
    fields = dict(current or {})
    if current is None:
        for key in rules.required:
            if not request.get(key):
                raise SourceError(f"{key} is required for {rules.label} event sources")
    for key in STORED:
        if key in request:
            if key not in rules.settings:
                raise SourceError(f"{key} does not apply to {rules.label} event sources")
            fields[key] = request[key]
    for key in ("Topics", "Queues"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, list) or len(value) != 1
                                  or not isinstance(value[0], str) or not value[0]):
            raise SourceError(f"{key} must hold exactly one name")
    endpoints = (fields.get("SelfManagedEventSource") or {}).get("Endpoints")
    if kind == SELF_MANAGED_KAFKA and not (isinstance(endpoints, dict)
                                           and endpoints.get("KAFKA_BOOTSTRAP_SERVERS")):
        raise SourceError("SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS is required")
    access = fields.get("SourceAccessConfigurations")
    if access is not None and not (isinstance(access, list) and all(
            isinstance(a, dict) and a.get("Type") and a.get("URI") for a in access)):
        raise SourceError("SourceAccessConfigurations must be a list of {Type, URI}")
    document_db = fields.get("DocumentDBEventSourceConfig")
    if kind == DOCUMENTDB and not (isinstance(document_db, dict)
                                   and document_db.get("DatabaseName")):
        raise SourceError("DocumentDBEventSourceConfig.DatabaseName is required")
    scaling = fields.get("ScalingConfig")
    if scaling is not None:
        maximum = scaling.get("MaximumConcurrency") if isinstance(scaling, dict) else None
        if maximum is not None and (isinstance(maximum, bool) or not isinstance(maximum, int)
                                    or not 2 <= maximum <= 1000):
            raise SourceError("1 validation error detected: Value at 'scalingConfig."
                              "maximumConcurrency' failed to satisfy constraint: Member must "
                              "have value between 2 and 1000")
    return fields
