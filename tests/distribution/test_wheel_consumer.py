"""Another project uses the harness from a wheel, in a fresh virtual environment (``make consumer``).

Slow (a venv and the harness's dependencies: 1-3 min on 2 cores), so it carries the ``consumer``
marker, which ``make test`` deselects; ``make consumer`` and CI run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.distribution.wheels import FULL_TREE, build_wheel, copy_tree

pytestmark = [pytest.mark.consumer, pytest.mark.timeout(900)]

CONSUMER_TEST = '''
def test_the_seed_reads_through_the_gateway(api):
    answer = api.post("/query/user", json={"user_id": "test_user_001"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["count"] >= 1


def test_my_record_is_queryable(command_record_factory, put_command, wait_for_sync, api):
    # the README's example, verbatim
    record = put_command(command_record_factory(ap_id="web-portal-001"))
    wait_for_sync(record, expect={"ap_id": "web-portal-001"})
    answer = api.post("/query/user", json={"user_id": record["user_id"]})
    assert answer.json()["records"][0]["ap_id"] == "web-portal-001"
'''


def _run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HARNESS_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_gives_another_project_working_fixtures(tmp_path: Path) -> None:
    wheel = build_wheel(copy_tree(FULL_TREE, tmp_path / "src"), tmp_path / "dist", isolated=True)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    project = tmp_path / "my-project"
    project.mkdir()
    (project / "test_smoke.py").write_text("def test_nothing():\n    pass\n")

    # Without the [harness] extra, pytest still starts, and says the fixtures are off.
    _run([python, "-m", "pip", "install", "-q", str(wheel), "pytest"], tmp_path)
    bare = _run([python, "-m", "pytest", "-p", "no:cacheprovider"], project)
    assert "query-harness: stack fixtures off" in bare.stdout, bare.stdout

    # With it, the stack comes up from the wheel's own infra/ and contracts/, outside any checkout.
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[harness]"], tmp_path)
    (project / "test_consumer.py").write_text(textwrap.dedent(CONSUMER_TEST))
    result = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"], project)
    assert "3 passed" in result.stdout, result.stdout
