"""Run every check against a context; a check that cannot ask AWS is a finding, not a crash."""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from harness.doctor import account_checks, routing_checks, service_checks, sync_checks  # noqa: F401  (they register)
from harness.doctor.context import Context
from harness.doctor.model import GROUPS, Finding, Status
from harness.doctor.registry import CHECKS

__all__ = ["run"]


def run(ctx: Context, on_finding: Callable[[Finding], None] | None = None) -> list[Finding]:
    """Every check, grouped in the seed's order; ``on_finding`` sees each as it is known."""
    findings: list[Finding] = []
    ordered = sorted(CHECKS, key=lambda c: list(GROUPS).index(c.id.split(".", 1)[0]))
    for item in ordered:
        started = time.perf_counter()
        try:
            results = item.run(ctx)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            results = [
                Finding(
                    item.id,
                    item.title,
                    Status.FAIL,
                    [f"{exc.operation_name}: {error.get('Code')}: {error.get('Message')}"],
                    "doctor could not ask: check the credentials and permissions it runs with",
                )
            ]
        except BotoCoreError as exc:
            results = [
                Finding(item.id, item.title, Status.FAIL, [str(exc)], "is the endpoint reachable?")
            ]
        elapsed = time.perf_counter() - started
        for result in results:
            result.seconds = elapsed / len(results)
            findings.append(result)
            if on_finding is not None:
                on_finding(result)
    return findings
