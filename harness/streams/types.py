"""Wire shapes of DynamoDB Streams event source mappings, as AWS spells them (TypedDicts)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Protocol, TypedDict

__all__ = [
    "AttributeMap",
    "BatchItemFailure",
    "DDBStreamBatchInfo",
    "DestinationConfig",
    "DynamoDBStreamEvent",
    "DynamoDBStreamEventRecord",
    "FailureCondition",
    "EventSourceMappingConfiguration",
    "InvokeResultLike",
    "Invoker",
    "ListEventSourceMappingsResponse",
    "OnFailureDestination",
    "OnFailureRecord",
    "OnFailureRequestContext",
    "OnFailureResponseContext",
    "PartialBatchResponse",
    "SQSEventRecord",
    "StreamRecordData",
]

#: A DynamoDB item in attribute-value form, e.g. ``{"pk": {"S": "a"}}``.
AttributeMap = dict[str, dict[str, Any]]

FailureCondition = Literal["RetryAttemptsExhausted", "RecordAgeExceeded"]


class StreamRecordData(TypedDict):
    """The ``dynamodb`` member of a stream record in a Lambda event."""

    ApproximateCreationDateTime: float
    Keys: AttributeMap
    NewImage: NotRequired[AttributeMap]
    OldImage: NotRequired[AttributeMap]
    SequenceNumber: str
    SizeBytes: int
    StreamViewType: str


class DynamoDBStreamEventRecord(TypedDict):
    """One record of the event Lambda sends for a DynamoDB stream."""

    eventID: str
    eventName: str
    eventVersion: str
    eventSource: str
    awsRegion: str
    dynamodb: StreamRecordData
    eventSourceARN: str
    userIdentity: NotRequired[dict[str, str]]


class DynamoDBStreamEvent(TypedDict):
    """The event payload: ``{"Records": [...]}``."""

    Records: list[DynamoDBStreamEventRecord]


class SQSEventRecord(TypedDict):
    """One record of the event Lambda sends for an SQS queue."""

    messageId: str
    receiptHandle: str
    body: str
    attributes: dict[str, str]
    messageAttributes: dict[str, Any]
    md5OfBody: str
    eventSource: str
    eventSourceARN: str
    awsRegion: str


class BatchItemFailure(TypedDict):
    """One entry of a partial batch response."""

    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    """What a function returns with ``FunctionResponseTypes: ["ReportBatchItemFailures"]``."""

    batchItemFailures: list[BatchItemFailure]


class OnFailureRequestContext(TypedDict):
    """``requestContext`` of an on-failure destination record."""

    requestId: str
    functionArn: str
    condition: FailureCondition
    approximateInvokeCount: int


class OnFailureResponseContext(TypedDict):
    """``responseContext`` of an on-failure destination record (last invocation's outcome)."""

    statusCode: int
    executedVersion: str
    functionError: NotRequired[str]


class DDBStreamBatchInfo(TypedDict):
    """Where the discarded records are in the stream (the records themselves are not sent)."""

    shardId: str
    startSequenceNumber: str
    endSequenceNumber: str
    approximateArrivalOfFirstRecord: str
    approximateArrivalOfLastRecord: str
    batchSize: int
    streamArn: str


class OnFailureRecord(TypedDict):
    """The message sent to the on-failure destination for a discarded batch."""

    requestContext: OnFailureRequestContext
    responseContext: NotRequired[OnFailureResponseContext]
    version: str
    timestamp: str
    DDBStreamBatchInfo: DDBStreamBatchInfo


class OnFailureDestination(TypedDict, total=False):
    """``DestinationConfig.OnFailure``."""

    Destination: str


class DestinationConfig(TypedDict):
    """``DestinationConfig`` of a mapping."""

    OnFailure: OnFailureDestination


class EventSourceMappingConfiguration(TypedDict):
    """A mapping as Create/Get/Update/Delete/List return it (members depend on the source)."""

    UUID: str
    BatchSize: int
    MaximumBatchingWindowInSeconds: int
    EventSourceArn: NotRequired[str]
    FunctionArn: str
    LastModified: float
    LastProcessingResult: NotRequired[str]
    State: str
    StateTransitionReason: str
    EventSourceMappingArn: str
    StartingPosition: NotRequired[str]
    ParallelizationFactor: NotRequired[int]
    DestinationConfig: NotRequired[DestinationConfig]
    MaximumRecordAgeInSeconds: NotRequired[int]
    BisectBatchOnFunctionError: NotRequired[bool]
    MaximumRetryAttempts: NotRequired[int]
    TumblingWindowInSeconds: NotRequired[int]
    FunctionResponseTypes: NotRequired[list[str]]
    Topics: NotRequired[list[str]]
    Queues: NotRequired[list[str]]
    SourceAccessConfigurations: NotRequired[list[dict[str, str]]]
    SelfManagedEventSource: NotRequired[dict[str, Any]]
    AmazonManagedKafkaEventSourceConfig: NotRequired[dict[str, Any]]
    SelfManagedKafkaEventSourceConfig: NotRequired[dict[str, Any]]
    DocumentDBEventSourceConfig: NotRequired[dict[str, Any]]
    ScalingConfig: NotRequired[dict[str, Any]]
    ProvisionedPollerConfig: NotRequired[dict[str, Any]]


class ListEventSourceMappingsResponse(TypedDict):
    """Answer of ListEventSourceMappings."""

    EventSourceMappings: list[EventSourceMappingConfiguration]
    NextMarker: NotRequired[str]


class InvokeResultLike(Protocol):
    """The part of ``harness.lambda_runtime.runtime.InvokeResult`` the poller reads."""

    @property
    def status_code(self) -> int: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def function_error(self) -> str | None: ...


class Invoker(Protocol):
    """Anything with ``LambdaRuntime.invoke``'s signature."""

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        client_context: Any = None,
        tail: bool = False,
    ) -> InvokeResultLike: ...
