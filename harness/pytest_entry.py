"""The ``pytest11`` entry point: loads :mod:`harness.pytest_plugin` only when its dependencies are there.

Installing ``query-service-v3`` without the ``[harness]`` extra must not stop pytest from starting
in that environment, so a missing third-party dependency turns the fixtures off and says so in
pytest's header instead of failing the whole session. A missing ``harness`` module is a real error
and is raised.
"""

from __future__ import annotations

import pytest

try:
    import harness.pytest_plugin  # noqa: F401 - imported to find out whether it can be
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] == "harness":
        raise
    MISSING: str | None = exc.name
else:
    MISSING = None
    pytest_plugins = ["harness.pytest_plugin"]


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line when the fixtures are off, naming what is missing."""
    if MISSING is None:
        return None
    return (
        f"query-harness: stack fixtures off ({MISSING!r} is not installed; "
        "pip install 'query-service-v3[harness]')"
    )
