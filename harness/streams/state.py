"""The state of one event source mapping, and how the API answers it (per source type)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harness.streams.batch import RESULT_NONE, PollerConfig
from harness.streams.poller import CheckpointStore, StreamPoller
from harness.streams.sources import DELIVERED, rules_for
from harness.streams.sqs_poller import SqsPoller
from harness.streams.types import EventSourceMappingConfiguration, OnFailureDestination
from harness.streams.validation import ApiError

__all__ = ["NOT_POLLED", "MappingState", "Poller", "describe", "parse_tags"]

#: LastProcessingResult of a mapping whose source the harness does not poll.
NOT_POLLED = ("PROBLEM: not polled: the local harness stores {label} mappings but delivers "
              "DynamoDB streams and SQS queues only")
Poller = StreamPoller | SqsPoller
#: Lambda's tag limits (TagResource): 50 tags, keys up to 128 characters, values up to 256.
MAX_TAGS = 50


@dataclass
class MappingState:
    """One mapping: its settings, where it lives, its tags and its poller."""

    config: PollerConfig
    enabled: bool
    state: str
    region: str
    account_id: str
    table_name: str = ""  # DynamoDB streams: the table whose writes wake the poller
    last_modified: float = field(default_factory=time.time)
    last_result: str = RESULT_NONE
    reason: str = "USER_INITIATED"
    checkpoints: CheckpointStore = field(default_factory=CheckpointStore)
    poller: Poller | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        """``arn:aws:lambda:<region>:<account>:event-source-mapping:<UUID>``."""
        return (f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:"
                f"{self.config.uuid}")


def parse_tags(value: Any) -> dict[str, str]:
    """Validate a ``Tags`` map as TagResource / CreateEventSourceMapping take it."""
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ApiError(400, "InvalidParameterValueException",
                       "Tags must be a map of strings to strings")
    for key, tag in value.items():
        if not 1 <= len(key) <= 128 or len(tag) > 256 or key.lower().startswith("aws:"):
            raise ApiError(400, "InvalidParameterValueException",
                           f"Invalid tag {key!r}: keys are 1-128 characters and may not start "
                           "with 'aws:'; values at most 256 characters")
    return dict(value)


def describe(mapping: MappingState) -> EventSourceMappingConfiguration:
    """The mapping as AWS answers it: the members of its source type only."""
    config = mapping.config
    rules = rules_for(config.source_type)
    answer: EventSourceMappingConfiguration = {
        "UUID": config.uuid,
        "BatchSize": config.batch_size,
        "MaximumBatchingWindowInSeconds": config.maximum_batching_window_s,
        "FunctionArn": config.function_arn,
        "LastModified": mapping.last_modified,
        "State": mapping.state,
        "StateTransitionReason": mapping.reason,
        "EventSourceMappingArn": mapping.arn,
    }
    if config.event_source_arn:
        answer["EventSourceArn"] = config.event_source_arn
    if config.starting_position:
        answer["StartingPosition"] = config.starting_position
    if rules.is_stream or config.source_type not in DELIVERED:
        answer["LastProcessingResult"] = mapping.last_result
    if rules.is_stream:
        answer["ParallelizationFactor"] = config.parallelization_factor
        answer["MaximumRecordAgeInSeconds"] = config.maximum_record_age_s
        answer["BisectBatchOnFunctionError"] = config.bisect_batch_on_function_error
        answer["MaximumRetryAttempts"] = config.maximum_retry_attempts
        answer["TumblingWindowInSeconds"] = 0
    if "DestinationConfig" in rules.settings:
        destination: OnFailureDestination = {}
        if config.on_failure_destination:
            destination["Destination"] = config.on_failure_destination
        answer["DestinationConfig"] = {"OnFailure": destination}
    if "FunctionResponseTypes" in rules.settings:
        answer["FunctionResponseTypes"] = (["ReportBatchItemFailures"]
                                           if config.report_batch_item_failures else [])
    for key, value in config.extra.items():
        answer[key] = value  # type: ignore[literal-required]  # members of STORED only
    return answer
