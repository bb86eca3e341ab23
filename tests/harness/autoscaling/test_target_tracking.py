"""TargetTracker: the two alarms, proportional capacity, min/max, cooldowns, DisableScaleIn."""

from __future__ import annotations

import pytest

from harness.autoscaling.target_tracking import ScalableTarget, TargetTracker, TargetTrackingPolicy

TARGET = ScalableTarget("service/cluster/service", min_capacity=2, max_capacity=6)


def tracker(time_scale: float = 1.0, **policy: object) -> TargetTracker:
    settings: dict[str, object] = {
        "name": "cpu",
        "target_value": 60.0,
        "scale_out_cooldown_s": 60,
        "scale_in_cooldown_s": 120,
        **policy,
    }
    return TargetTracker(TARGET, TargetTrackingPolicy(**settings), time_scale=time_scale)  # type: ignore[arg-type]


def test_high_alarm_needs_three_datapoints_above_the_target() -> None:
    t = tracker()
    assert t.evaluate([90.0, 90.0], 2, 0).new_capacity is None
    assert t.evaluate([90.0, 50.0, 90.0, 90.0], 2, 0).new_capacity is None
    decision = t.evaluate([50.0, 90.0, 90.0, 90.0], 2, 0)
    assert (decision.alarm, decision.new_capacity) == ("high", 3)  # ceil(2 * 90 / 60)


def test_scale_out_is_proportional_and_clamped_to_the_maximum() -> None:
    assert tracker().evaluate([400.0] * 3, 2, 0).new_capacity == 6  # ceil(2 * 400 / 60) = 14
    assert tracker().evaluate([61.0] * 3, 6, 0).new_capacity is None  # already at the maximum


def test_low_alarm_needs_fifteen_datapoints_below_ninety_percent() -> None:
    t = tracker()
    assert t.evaluate([10.0] * 14, 4, 0).new_capacity is None
    assert t.evaluate([10.0] * 14 + [55.0], 4, 0).new_capacity is None  # 55 >= 0.9 * 60
    decision = t.evaluate([50.0] * 15, 4, 0)  # ceil(4 * 50 / 60) = 4: in ALARM, nothing to do
    assert (decision.alarm, decision.new_capacity) == ("low", None)
    assert t.evaluate([10.0] * 15, 4, 0).new_capacity == 2  # ceil(4 * 10 / 60) = 1 -> min 2
    assert t.evaluate([30.0] * 15, 5, 0).new_capacity == 3  # ceil(5 * 30 / 60)


def test_missing_datapoints_are_not_considered() -> None:
    """TreatMissingData `missing` (the default): the alarm looks past missing datapoints."""
    t = tracker()
    assert t.evaluate([90.0, None, 90.0], 2, 0).alarm is None  # only two present
    assert t.evaluate([90.0, None, 90.0, 90.0], 2, 0).alarm == "high"
    assert t.evaluate([None] + [10.0] * 14, 4, 0).alarm is None  # only fourteen present
    assert t.evaluate([10.0] * 7 + [None] + [10.0] * 8, 4, 0).alarm == "low"
    assert t.evaluate([10.0] * 15 + [None], 4, 0).new_capacity == 2  # newest present value


def test_disable_scale_in_suppresses_the_low_alarm_action() -> None:
    decision = tracker(disable_scale_in=True).evaluate([0.0] * 15, 4, 0)
    assert decision.alarm == "low" and decision.new_capacity is None
    assert "disabled" in decision.reason


def test_a_suspended_direction_keeps_its_alarm_but_does_not_scale() -> None:
    """The scalable target's SuspendedState: scale-out / scale-in suspended, each on its own."""
    import dataclasses

    t = tracker()
    t.reconfigure(dataclasses.replace(TARGET, scale_in_suspended=True), t.policy)
    low = t.evaluate([0.0] * 15, 4, 0)
    assert low.alarm == "low" and low.new_capacity is None
    assert low.reason == "dynamic scale-in is suspended"
    assert t.evaluate([90.0] * 3, 2, 0).new_capacity == 3  # scale-out still works
    t.reconfigure(dataclasses.replace(TARGET, scale_out_suspended=True), t.policy)
    high = t.evaluate([90.0] * 3, 2, 0)
    assert high.alarm == "high" and high.new_capacity is None
    assert high.reason == "dynamic scale-out is suspended"
    assert t.evaluate([0.0] * 15, 4, 0).new_capacity == 2  # scale-in still works


def test_scale_in_cooldown_blocks_scale_in_but_not_scale_out() -> None:
    t = tracker()
    t.scaled(t.evaluate([20.0] * 15, 6, 0), now=100.0)  # 6 -> 2, cooldown until 220
    assert t.evaluate([10.0] * 15, 4, 200.0).new_capacity is None
    assert t.evaluate([10.0] * 15, 4, 221.0).new_capacity == 2
    out = t.evaluate([90.0] * 3, 2, 150.0)  # a scale-out during the scale-in cooldown: at once
    assert out.new_capacity == 3


def test_scale_out_cooldown_counts_the_capacity_already_added() -> None:
    t = tracker()
    first = t.evaluate([90.0] * 3, 2, 0)
    t.scaled(first, now=10.0)  # 2 -> 3, cooldown until 70
    # the metric is still 90 (the new task is not serving yet): 2 * 90 / 60 = 3, already set
    assert t.evaluate([90.0] * 3, 3, 30.0).new_capacity is None
    # more load during the cooldown: computed from the capacity before the scale-out
    assert t.evaluate([150.0] * 3, 3, 40.0).new_capacity == 5  # ceil(2 * 150 / 60)
    # after the cooldown, from the current capacity
    assert t.evaluate([90.0] * 3, 3, 80.0).new_capacity == 5  # ceil(3 * 90 / 60)


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_time_scale_divides_the_cooldowns(scale: float) -> None:
    t = tracker(time_scale=scale)
    t.scaled(t.evaluate([10.0] * 15, 4, 0), now=0.0)  # 4 -> 2
    assert t.evaluate([10.0] * 15, 3, 119.0 / scale).new_capacity is None
    assert t.evaluate([10.0] * 15, 3, 121.0 / scale).new_capacity == 2
