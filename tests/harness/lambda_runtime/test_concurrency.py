"""The account's concurrency limit: AWS's default, the machine cap, shared unreserved capacity."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lambda_runtime import concurrency
from harness.lambda_runtime.runtime import (
    FunctionConfig,
    InvokeResult,
    LambdaRuntime,
    TooManyRequests,
)

FIXTURES = Path(__file__).parent / "fixtures_lambda"
REGION = "ap-southeast-1"


def config(name: str, reserved: int | None = None) -> FunctionConfig:
    return FunctionConfig(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:000000000000:function:{name}",
        handler="handlers.block",
        code_dir=FIXTURES,
        environment={},
        timeout_s=60,
        reserved_concurrency=reserved,
    )


class Blocked:
    """Invocations of ``handlers.block`` held running until released."""

    def __init__(self, rt: LambdaRuntime, directory: Path) -> None:
        self.rt, self.directory = rt, directory
        self.threads: list[threading.Thread] = []
        self.results: list[InvokeResult] = []

    def start(self, name: str) -> None:
        before = len(list(self.directory.glob("started-*")))
        event = json.dumps({"dir": str(self.directory)}).encode()
        thread = threading.Thread(target=lambda: self.results.append(self.rt.invoke(name, event)))
        thread.start()
        self.threads.append(thread)
        deadline = time.monotonic() + 60
        while len(list(self.directory.glob("started-*"))) <= before:
            assert time.monotonic() < deadline, f"{name} never started"
            time.sleep(0.01)

    def release(self) -> None:
        (self.directory / "release").touch()
        for thread in self.threads:
            thread.join(60)
        assert [r.function_error for r in self.results] == [None] * len(self.threads)


@pytest.fixture
def blocked(tmp_path: Path) -> Iterator[Blocked]:
    with LambdaRuntime(endpoint_url="http://127.0.0.1:9", region=REGION, max_concurrency=3) as rt:
        held = Blocked(rt, tmp_path)
        try:
            yield held
        finally:
            held.release()


def test_default_is_aws_regional_quota_capped_by_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(concurrency.ENV_VAR, raising=False)
    monkeypatch.setattr(concurrency, "machine_cap", lambda: 5000)
    assert concurrency.account_concurrency() == 1000
    monkeypatch.setattr(concurrency, "machine_cap", lambda: 300)
    assert concurrency.account_concurrency() == 300
    assert concurrency.account_concurrency(64) == 64


def test_environment_variable_sets_the_limit_and_bad_values_are_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(concurrency, "machine_cap", lambda: 300)
    monkeypatch.setenv(concurrency.ENV_VAR, "12")
    assert concurrency.account_concurrency() == 12
    monkeypatch.setenv(concurrency.ENV_VAR, "lots")
    with pytest.raises(ValueError, match="whole number"):
        concurrency.account_concurrency()
    with pytest.raises(ValueError, match="at least 1"):
        concurrency.account_concurrency(0)


def test_machine_cap_is_at_least_one() -> None:
    assert 1 <= concurrency.machine_cap()


def test_unreserved_functions_share_the_account_limit(blocked: Blocked) -> None:
    blocked.rt.register(config("a"))
    blocked.rt.register(config("b"))
    blocked.start("a")
    blocked.start("a")
    blocked.start("b")
    with pytest.raises(TooManyRequests) as caught:
        blocked.rt.invoke("b", b"{}")
    assert caught.value.reason == "ConcurrentInvocationLimitExceeded"
    assert "Account concurrency limit of 3" in str(caught.value)


def test_reserved_concurrency_comes_out_of_the_account_pool(blocked: Blocked) -> None:
    blocked.rt.register(config("reserved", reserved=2))
    blocked.rt.register(config("other"))
    blocked.start("other")  # 3 - 2 reserved = 1 unreserved
    with pytest.raises(TooManyRequests) as caught:
        blocked.rt.invoke("other", b"{}")
    assert caught.value.reason == "ConcurrentInvocationLimitExceeded"
    blocked.start("reserved")
    blocked.start("reserved")  # the reservation is there even with the account pool full
    with pytest.raises(TooManyRequests) as caught:
        blocked.rt.invoke("reserved", b"{}")
    assert caught.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
