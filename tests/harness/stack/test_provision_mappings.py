"""Provisioning waits for a new event source mapping to be Enabled, as Terraform does."""

from __future__ import annotations

from typing import Any

import pytest

import harness.stack.provision as provision
from harness.stack.infra import ROOT, MappingSpec, load_infra
from harness.stack.provision import Provisioner

STREAM = "arn:aws:dynamodb:ap-southeast-1:123456789012:table/src/stream/2024"


class FakeLambda:
    """CreateEventSourceMapping answers Creating; GetEventSourceMapping walks ``states``."""

    def __init__(self, states: list[str]) -> None:
        self.states = states
        self.gets = 0

    def list_event_source_mappings(self, **_: Any) -> dict[str, Any]:
        return {"EventSourceMappings": []}

    def create_event_source_mapping(self, **_: Any) -> dict[str, Any]:
        return {"UUID": "u-1", "State": "Creating"}

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803 - boto3's
        self.gets += 1
        state = self.states[min(self.gets, len(self.states)) - 1]
        return {"UUID": UUID, "State": state, "LastProcessingResult": "No records processed"}


def provisioner(fake: FakeLambda) -> Provisioner:
    infra = load_infra(ROOT, region="ap-southeast-1", account_id="123456789012")
    result = Provisioner(infra, "http://127.0.0.1:9")
    result._clients["lambda"] = fake
    result.result.stream_arns["src"] = STREAM
    return result


SPEC = MappingSpec("fn", "src", {"StartingPosition": "TRIM_HORIZON"}, None)


def test_a_new_mapping_is_waited_for_until_enabled() -> None:
    fake = FakeLambda(["Creating", "Creating", "Enabled"])
    made = provisioner(fake)
    made.mapping(SPEC)
    assert fake.gets == 0  # creating answers at once; the wait is apart
    made.wait_mappings()
    assert fake.gets == 3
    made.wait_mappings()  # nothing left to wait for
    assert fake.gets == 3


def test_a_mapping_still_creating_past_the_limit_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provision, "MAPPING_READY_S", 0.0)
    made = provisioner(FakeLambda(["Creating"]))
    made.mapping(SPEC)
    with pytest.raises(RuntimeError, match=r"src -> fn is still Creating after 0 s"):
        made.wait_mappings()
