"""Build this repository's wheel from a copy of the tree (the checkout itself is never written)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: what `pip install .` sees of the repository (tests, bench, scripts are not part of the wheel)
FULL_TREE = ("pyproject.toml", "setup.py", "README.md", "service", "lambdas", "harness", "infra", "contracts")
#: the service image's build context (the Dockerfile's COPY lines)
SERVICE_TREE = ("pyproject.toml", "setup.py", "README.md", "service")


def copy_tree(names: tuple[str, ...], into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".terraform*")
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=ignore)
        else:
            shutil.copy2(source, into / name)
    return into


def build_wheel(source: Path, out_dir: Path, *, isolated: bool = False) -> Path:
    """``pip wheel`` the tree at ``source``; returns the wheel's path."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir)]
    if not isolated:
        command.append("--no-build-isolation")
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = out_dir.glob("query_service_v3-*.whl")
    return wheel
