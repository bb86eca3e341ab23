"""`query-harness verify` as a user runs it: bad input is one line and exit 2; a deployed stage
gets only its read-only items, and the rest are NOT CHECKED, never passed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.ingress.servers import ASGIServer, send_json


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "harness", "verify", *args], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lang", "fr"], "--lang must be one of zh-TW, en"),
        (["--only", "1,12"], "unknown item(s) 12"),
    ],
)
def test_verify_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_verify_cli_bad_target_is_one_line(tmp_path: Path) -> None:
    result = run("--target", "ftp://stage", "--only", "4", tmp_path=tmp_path)
    assert result.returncode == 2 and "--target must be 'local' or an http(s) URL" in result.stderr


class _Stage:
    """A stand-in deployed stage: /health answers 200."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send_json(send, 200, {"status": "ok"}, [])


@pytest.fixture
def stage() -> Iterator[str]:
    server = ASGIServer(_Stage(), host="127.0.0.1", port=0, name="stage")
    server.start()
    yield f"{server.url}/v1"
    server.stop()


def test_verify_cli_on_a_stage_runs_read_only_items_and_writes_the_report(tmp_path: Path, stage: str) -> None:
    out = tmp_path / "report"
    result = run("--target", stage, "--only", "2,4,6", "--out", str(out), "--lang", "en", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    items = {i["id"]: i["status"] for i in json.loads((out / "acceptance.json").read_text())["items"]}
    assert items == {"2": "NOT CHECKED", "4": "PASS", "6": "NOT CHECKED"}
    assert (out / "index.html").is_file() and (out / "junit.xml").is_file()
    assert "PASS" in result.stdout and "NOT CHECKED" in result.stdout


def test_verify_cli_unreachable_stage_is_one_line_and_checks_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "report"
    result = run("--target", f"http://127.0.0.1:{port}/v1", "--out", str(out), tmp_path=tmp_path)
    assert result.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}/v1" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
