"""Schemathesis against the live stack: through the gateway (/v1) and against a replica directly."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import unsupported_method

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi.yaml"

schema = schemathesis.openapi.from_path(CONTRACT)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_gateway_fuzz_contract_holds(case: schemathesis.Case, stack) -> None:
    # API Gateway answers an undefined method with 403 Missing Authentication Token, not 405.
    case.call_and_validate(base_url=stack.gateway_url, excluded_checks=[unsupported_method])


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_replica_fuzz_contract_holds(case: schemathesis.Case, stack) -> None:
    if stack.stack is None:
        pytest.skip("replicas are only reachable on a stack this session started")
    case.call_and_validate(base_url=stack.stack.replicas.replicas[0].url)


def _schemathesis_cli(url: str, report: Path, *extra: str) -> None:
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(CONTRACT),
        "--url",
        url,
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and report.is_file()


def _report_dir(tmp_path: Path) -> Path:
    import os

    directory = Path(os.environ.get("HARNESS_REPORT_DIR", tmp_path))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_gateway_schemathesis_cli_finds_no_failures(stack, tmp_path: Path) -> None:
    _schemathesis_cli(
        stack.gateway_url,
        _report_dir(tmp_path) / "schemathesis-gateway.xml",
        "--exclude-checks",
        "unsupported_method",
    )


def test_replica_schemathesis_cli_finds_no_failures(stack, tmp_path: Path) -> None:
    if stack.stack is None:
        pytest.skip("replicas are only reachable on a stack this session started")
    _schemathesis_cli(
        stack.stack.replicas.replicas[0].url, _report_dir(tmp_path) / "schemathesis-replica.xml"
    )
