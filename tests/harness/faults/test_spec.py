"""Fault specs: what is accepted, and one-line reasons for what is not."""

from __future__ import annotations

from typing import Any

import pytest

from harness.faults.spec import FaultSpecError, KeyPattern, parse_spec


def test_parse_spec_fail_with_poison_keys_keeps_patterns_and_defaults() -> None:
    spec = parse_spec(
        {"kind": "fail", "function": "stream-processor", "keys": ["transaction_id=poison-*"]}
    )
    assert (spec.mode, spec.fraction, [str(k) for k in spec.keys]) == (
        "unhandled",
        1.0,
        ["transaction_id=poison-*"],
    )
    assert spec.keys[0].matches({"transaction_id": "poison-7"})
    assert not spec.keys[0].matches({"transaction_id": "good-7"})


def test_parse_spec_throttle_lists_operations_and_error() -> None:
    spec = parse_spec(
        {
            "kind": "throttle",
            "table": "t",
            "operations": ["PutItem"],
            "error": "ThrottlingException",
        }
    )
    assert spec.as_dict()["operations"] == ["PutItem"]
    assert spec.as_dict()["error"] == "ThrottlingException"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"kind": "fail", "function": "f", "fraction": 1.5}, "fraction must be from 0 to 1"),
        ({"kind": "fail", "function": "f", "fraction": -0.1}, "fraction must be from 0 to 1"),
        ({"kind": "fail", "function": "f", "fraction": "half"}, "fraction must be a number"),
        ({"kind": "fail", "function": "f", "keys": ["transaction_id"]}, "malformed key pattern"),
        ({"kind": "fail", "function": "f", "keys": ["=x"]}, "malformed key pattern"),
        ({"kind": "fail", "function": "f", "keys": ["a=[x"]}, "unbalanced"),
        ({"kind": "fail", "function": "f", "mode": "sometimes"}, "mode must be one of"),
        ({"kind": "fail"}, "needs 'function'"),
        ({"kind": "throttle", "function": "f"}, "needs 'table'"),
        ({"kind": "throttle", "table": "t", "operations": ["Drop"]}, "unknown DynamoDB operation"),
        ({"kind": "throttle", "table": "t", "error": "Nope"}, "error must be one of"),
        ({"kind": "explode"}, "unknown kind"),
        ({"kind": "delay", "function": "f", "delay_ms": -1}, "delay_ms must be from 0"),
        ({"kind": "fail", "function": "f", "colour": "red"}, "unknown field"),
        ({"kind": "fail", "function": "f", "count": 0}, "count must be from 1"),
        ([], "a fault spec is a JSON object"),
    ],
)
def test_parse_spec_bad_input_raises_one_line_reason(document: Any, reason: str) -> None:
    with pytest.raises(FaultSpecError, match=reason) as raised:
        parse_spec(document)
    assert "\n" not in str(raised.value)


def test_key_pattern_needs_attribute_and_glob() -> None:
    assert str(KeyPattern.parse(" user_id = u-* ")) == "user_id=u-*"
    with pytest.raises(FaultSpecError):
        KeyPattern.parse("user_id=")
