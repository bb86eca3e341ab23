"""`logs`: -n 0, every component in --help, --merge by time, and what the logs hold (point 9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.stack.state import line_time, merged_tail
from tests.harness.cli.cli_run import run

Stack = tuple[Path, dict[str, Any]]


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "harness.log").write_text(
        "2026-12-01 13:00:01,000 INFO harness one\n2026-12-01 13:00:03,000 INFO harness three\n"
    )
    (logs / "replica-1.log").write_text(
        "INFO:     Started server process [1]\n"
        '{"timestamp": "2026-12-01T13:00:02.000+00:00", "message": "two"}\n'
        "Traceback (most recent call last): after two\n"
    )
    return logs


def test_line_time_reads_asctime_and_iso_with_offset() -> None:
    assert line_time('{"requestTime":"2026-12-01T13:00:02.5+00:00"}') == line_time(
        '{"timestamp": "2026-12-01T13:00:02.500Z"}'
    )
    assert line_time("INFO:     Started server process") is None


def test_merged_tail_orders_by_time_and_keeps_untimed_lines_in_place(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    files = {p.stem: p for p in logs.glob("*.log")}
    merged = [line for _, line in merged_tail(files, 10)]
    assert merged.index("2026-12-01 13:00:01,000 INFO harness one") < merged.index(
        '{"timestamp": "2026-12-01T13:00:02.000+00:00", "message": "two"}'
    )
    assert merged[-2].startswith("Traceback") or merged[-1].startswith("Traceback")
    assert merged[-1] == "2026-12-01 13:00:03,000 INFO harness three"
    assert merged_tail(files, 0) == []


def test_cli_logs_n_0_prints_nothing_and_help_lists_endpoint(tmp_path: Path) -> None:
    _logs(tmp_path)
    none = run("logs", "-n", "0", state_dir=tmp_path)
    assert none.returncode == 0 and none.stdout.strip() == "", none.stdout
    merged = run("logs", "--merge", "-n", "2", state_dir=tmp_path)
    assert merged.stdout.splitlines() == [
        "replica-1 Traceback (most recent call last): after two",
        "harness 2026-12-01 13:00:03,000 INFO harness three",
    ]
    help_text = " ".join(run("logs", "--help", state_dir=tmp_path).stdout.split())
    assert "endpoint" in help_text and "--merge" in help_text


def test_replica_logs_hold_no_passing_health_checks(detached_stack: Stack) -> None:
    state_dir, _ = detached_stack
    task_logs = sorted((state_dir / "logs").glob("task-*.log"))  # one per ECS task
    assert task_logs, sorted(p.name for p in (state_dir / "logs").iterdir())
    before = [log.read_text().count('"/health"') for log in task_logs]
    window_s = 5.0
    time.sleep(window_s)
    grown = [log.read_text().count('"/health"') - n for log, n in zip(task_logs, before, strict=True)]
    # At time scale 10 the load balancer checks each task every second (5 checks in the window),
    # unlogged when they pass; the container health check of the task definition (every 15 s on
    # AWS, 1.5 s here: at most 4 in the window) is a request like any other and logged, as curl's
    # would be on AWS. Logged passing ELB checks would add 5 more.
    assert all(n <= window_s // 1.5 + 1 for n in grown), grown


def test_endpoint_log_keeps_a_functions_error_level(detached_stack: Stack) -> None:
    state_dir, _ = detached_stack
    result = run("invoke", "stream-processor", '{"Records": [{"eventID": "x"}]}', state_dir=state_dir)
    assert result.returncode in (0, 1)
    lines = (state_dir / "logs" / "endpoint.log").read_text().splitlines()
    errors = [line for line in lines if "[stream-processor]" in line and '"level":"ERROR"' in line]
    assert errors and all(" ERROR harness.lambda " in line for line in errors), errors[:2]
