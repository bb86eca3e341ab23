"""Doctor's findings for people (rich, grouped as the seed's list) and for machines (JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.doctor.model import GROUPS, Finding, Status

__all__ = ["STYLE", "as_json", "print_finding", "print_summary"]

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.NA: "dim"}


def print_finding(console: Console, finding: Finding, *, group_changed: bool) -> None:
    """One finding as soon as it is known, under its group's heading."""
    if group_changed:
        zh, en = GROUPS[finding.group]
        console.print(f"\n[bold]{zh} · {en}[/]")
    style = STYLE[finding.status]
    console.print(
        f"  [{style}]{finding.status.value:<4}[/] {escape(finding.title)}", highlight=False
    )
    for line in finding.evidence:
        console.print(f"         {escape(line)}", highlight=False, soft_wrap=True)
    if finding.next_step:
        console.print(
            f"       [cyan]→ {escape(finding.next_step)}[/]", highlight=False, soft_wrap=True
        )


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    found = {status.value: 0 for status in Status}
    for finding in findings:
        found[finding.status.value] += 1
    return found


def print_summary(console: Console, findings: list[Finding], seconds: float) -> None:
    tally = counts(findings)
    parts = [f"[{STYLE[s]}]{tally[s.value]} {s.value}[/]" for s in Status if tally[s.value]]
    console.print(f"\n{', '.join(parts)} in {seconds:.1f} s")


def as_json(
    target: str, window_s: float, findings: list[Finding], seconds: float
) -> dict[str, Any]:
    return {
        "target": target,
        "window_minutes": window_s / 60,
        "seconds": round(seconds, 3),
        "summary": counts(findings),
        "ok": not any(f.status == Status.FAIL for f in findings),
        "findings": [f.to_json() for f in findings],
    }
