"""What the distribution holds depends on what the build context holds (metadata: pyproject.toml).

From the repository the wheel is the whole harness: ``service``, ``lambdas`` and ``harness``, plus
a copy of ``infra/`` and ``contracts/`` under ``harness/_project/`` (the stack provisions from them;
``harness.stack.project`` finds them), the ``query-harness`` command and the ``pytest11`` plugin.
The service image's build context holds only ``service/`` (see the Dockerfile): its ``pip install .``
then installs the service alone, with no harness entry points.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DATA_DIRS = ("infra", "contracts")
HAS_HARNESS = (HERE / "harness").is_dir()


class BuildWithProjectData(build_py):
    """build_py, plus infra/ and contracts/ copied into harness/_project/ (not for editable
    installs: those read the checkout itself)."""

    def run(self) -> None:
        super().run()
        if not HAS_HARNESS or self.editable_mode:
            return
        target = Path(self.build_lib) / "harness" / "_project"
        for name in DATA_DIRS:
            if (HERE / name).is_dir():
                shutil.copytree(
                    HERE / name,
                    target / name,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".terraform*", "*.tfstate*"),
                )


entry_points: dict[str, list[str]] = {}
if HAS_HARNESS:
    entry_points = {
        "console_scripts": ["query-harness = harness.cli.app:main"],
        # A shim: it loads the fixtures only when the [harness] extra is installed.
        "pytest11": ["query_harness = harness.pytest_entry"],
    }

setup(cmdclass={"build_py": BuildWithProjectData}, entry_points=entry_points)
