"""CreateEventSourceMapping answers at once (Creating); the environment, then the poller, start
off the caller's thread; Update while Creating is ResourceInUseException; Delete is not."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from esm_fakes import ACCOUNT, REGION, FakeRuntime, clients, create_source_table, put, wait_until

from harness.streams.batch import PollerTimings
from harness.streams.mappings import EventSourceMappings

BASE = "/2015-03-31/event-source-mappings"
FAST = PollerTimings(fallback_poll_s=0.2, retry_base_s=0.01, retry_max_s=0.05)


class HeldPrewarmRuntime(FakeRuntime):
    """A runtime whose prewarm (the function's first environment) lasts until ``release()``."""

    def __init__(self) -> None:
        super().__init__()
        self.prewarming = threading.Event()
        self._release = threading.Event()
        self.prewarmed: list[str] = []

    def prewarm(self, name: str) -> None:
        self.prewarming.set()
        assert self._release.wait(30), "the test never released the prewarm"
        self.prewarmed.append(name)

    def release(self) -> None:
        self._release.set()


@pytest.fixture
def runtime() -> HeldPrewarmRuntime:
    fake = HeldPrewarmRuntime()
    fake.register("fn", lambda event: None)
    return fake


@pytest.fixture
def stream_arn(moto_url: str) -> str:
    return create_source_table(clients(moto_url)["dynamodb"], f"src-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def esm(moto_url: str, runtime: HeldPrewarmRuntime) -> Iterator[EventSourceMappings]:
    mappings = EventSourceMappings(endpoint_url=moto_url, region=REGION, account_id=ACCOUNT,
                                   runtime=runtime, timings=FAST)
    mappings.start()
    yield mappings
    runtime.release()
    mappings.stop()


def call(esm: EventSourceMappings, method: str, path: str = "",
         body: Any = None) -> tuple[int, dict[str, Any]]:
    return esm.handle(method, BASE + path, {}, json.dumps(body or {}).encode())


def create(esm: EventSourceMappings, stream_arn: str) -> dict[str, Any]:
    status, body = call(esm, "POST", body={"FunctionName": "fn", "EventSourceArn": stream_arn,
                                           "StartingPosition": "TRIM_HORIZON"})
    assert status == 202, body
    return body


def state(esm: EventSourceMappings, mapping_id: str) -> str:
    return str(call(esm, "GET", f"/{mapping_id}")[1]["State"])


def poller_threads(mapping_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"esm-{mapping_id[:8]}"]


def test_create_answers_creating_while_the_environment_still_starts(
        esm: EventSourceMappings, runtime: HeldPrewarmRuntime, stream_arn: str) -> None:
    mapping_id = create(esm, stream_arn)["UUID"]  # returned although the prewarm is held
    assert runtime.prewarming.wait(10)
    assert state(esm, mapping_id) == "Creating"
    assert poller_threads(mapping_id) == []  # the environment starts before the poller
    runtime.release()
    wait_until(lambda: state(esm, mapping_id) == "Enabled", what="state Enabled")
    assert runtime.prewarmed == [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"]


def test_update_while_creating_is_resource_in_use_and_applies_nothing(
        esm: EventSourceMappings, runtime: HeldPrewarmRuntime, stream_arn: str) -> None:
    mapping_id = create(esm, stream_arn)["UUID"]
    assert runtime.prewarming.wait(10)
    status, body = call(esm, "PUT", f"/{mapping_id}", {"BatchSize": 5})
    assert status == 400 and body["__type"] == "ResourceInUseException", body
    assert "Creating" in body["message"]
    status, body = call(esm, "PUT", f"/{mapping_id}", {"BatchSize": 0})
    assert status == 400 and body["__type"] == "InvalidParameterValueException"  # checked first
    assert call(esm, "GET", f"/{mapping_id}")[1]["BatchSize"] == 100
    runtime.release()
    wait_until(lambda: state(esm, mapping_id) == "Enabled", what="state Enabled")
    status, body = call(esm, "PUT", f"/{mapping_id}", {"BatchSize": 5})
    assert (status, body["BatchSize"]) == (202, 5)


def test_delete_while_creating_starts_no_poller(
        esm: EventSourceMappings, runtime: HeldPrewarmRuntime, stream_arn: str,
        moto_url: str) -> None:
    put(clients(moto_url)["dynamodb"], stream_arn.split("/")[1], "written-before-the-mapping")
    mapping_id = create(esm, stream_arn)["UUID"]
    assert runtime.prewarming.wait(10)
    status, body = call(esm, "DELETE", f"/{mapping_id}")
    assert (status, body["State"]) == (202, "Deleting")
    assert call(esm, "GET", f"/{mapping_id}")[0] == 404
    runtime.release()
    wait_until(lambda: runtime.prewarmed, what="the prewarm to end")
    second = create(esm, stream_arn)["UUID"]  # no conflict; this one does start, and delivers
    wait_until(lambda: runtime.invocations("fn"), what="the second mapping's first batch")
    assert poller_threads(mapping_id) == [] and len(poller_threads(second)) == 1
    assert len(runtime.invocations("fn")) == 1  # the record once: by the second mapping only
