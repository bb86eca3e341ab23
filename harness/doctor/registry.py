"""The list of checks, in the seed's order, and how one is declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.doctor.context import Context
from harness.doctor.model import Finding, Status

__all__ = ["CHECKS", "Check", "check", "finding"]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[Context], list[Finding]]


CHECKS: list[Check] = []


def check(
    check_id: str, title: str
) -> Callable[[Callable[[Context], list[Finding]]], Callable[[Context], list[Finding]]]:
    """Declare a check: ``@check("sync.mapping", "...")`` on ``def f(ctx) -> list[Finding]``."""

    def register(
        function: Callable[[Context], list[Finding]],
    ) -> Callable[[Context], list[Finding]]:
        CHECKS.append(Check(check_id, title, function))
        return function

    return register


def finding(
    check_id: str, title: str, status: Status, evidence: list[str], next_step: str = ""
) -> list[Finding]:
    """One finding, as the one-element list most checks return."""
    return [Finding(check_id, title, status, evidence, next_step if status != Status.PASS else "")]
