"""TimeScale: one factor divides every AWS period."""

from __future__ import annotations

import pytest

from harness.ecs.timescale import ENV_VAR, TimeScale


def test_timescale_divides_aws_seconds_and_converts_back() -> None:
    scale = TimeScale(30)
    assert scale.seconds(60) == 2.0
    assert scale.to_aws(2.0) == 60.0
    assert scale.export() == {ENV_VAR: "30"}
    assert "divided by 30" in scale.describe()
    assert TimeScale().describe() == "time scale 1 (AWS's real timing)"


def test_timescale_from_env_reads_the_variable_or_defaults_to_one() -> None:
    assert TimeScale.from_env({}) == TimeScale(1.0)
    assert TimeScale.from_env({ENV_VAR: " 12.5 "}).factor == 12.5


@pytest.mark.parametrize("bad", ["0", "-3", "nan", "inf", "fast"])
def test_timescale_rejects_non_positive_or_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="positive number"):
        TimeScale.from_env({ENV_VAR: bad})
