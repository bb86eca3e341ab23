"""Real Lambda functions for endpoint tests: they append lines to a "marks" file the test reads."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.config import Config

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30)


def handler_zip(source: str) -> bytes:
    """A deployment package with ``source`` as ``app.py`` (handler ``app.handler``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def create_marking_function(
    factory: Callable[..., Any], source: str, marks: Path, region: str = "ap-southeast-1"
) -> str:
    """Create a function running ``source`` with ``MARKS`` set to ``marks``; returns its name."""
    role = factory("iam").create_role(
        RoleName=f"r-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    name = f"fn-{uuid.uuid4().hex[:8]}"
    factory("lambda", region=region, config=NO_RETRY).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": handler_zip(source)},
        Timeout=10,
        Environment={"Variables": {"MARKS": str(marks)}},
    )
    return name


def read_marks(path: Path) -> list[str]:
    """The lines written so far."""
    return path.read_text().splitlines() if path.exists() else []


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate``; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"condition not reached in {timeout_s} s"
        time.sleep(0.05)
