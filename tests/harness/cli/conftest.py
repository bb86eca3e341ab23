"""One detached stack shared by the CLI tests that only read from it or write their own records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cli.cli_run import run


@pytest.fixture(scope="session")
def detached_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(state dir, state) of a stack started with `up --detach` on free ports."""
    state_dir = tmp_path_factory.mktemp("cli-stack")
    # time scale 10: the load balancer checks each task every second (AWS: every 10 s)
    up = run(
        "up", "--detach", "--edge-port", "0", "--gateway-port", "0", "--time-scale", "10",
        state_dir=state_dir,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield state_dir, json.loads((state_dir / "state.json").read_text())
    finally:
        run("down", state_dir=state_dir)
