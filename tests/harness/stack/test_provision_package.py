"""The Lambda package: the lambdas sources, plus vendored dependencies where the backend needs them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from harness.stack.lambda_zip import build_lambda_zip
from harness.stack.stack import Stack, StackConfig, StackError


def names(data: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_build_lambda_zip_holds_both_handlers_and_no_bytecode() -> None:
    content = names(build_lambda_zip())
    assert {
        "lambdas/query/handler.py",
        "lambdas/stream_processor/handler.py",
        "lambdas/records.py",
    } <= content
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in content)


def test_build_lambda_zip_is_reproducible() -> None:
    assert build_lambda_zip() == build_lambda_zip()


def test_build_lambda_zip_puts_vendored_packages_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "aws_lambda_powertools").mkdir()
    (tmp_path / "aws_lambda_powertools" / "__init__.py").write_text("")
    content = names(build_lambda_zip(vendor_dir=tmp_path))
    assert "aws_lambda_powertools/__init__.py" in content and "lambdas/query/handler.py" in content


def test_stack_on_localstack_without_built_dependencies_says_how_to_build_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.stack.stack.docker_available", lambda: True)  # as on a Docker machine
    (tmp_path / "lambdas").mkdir()
    config = StackConfig(
        backend="localstack", gateway_port=0, root=tmp_path, state_dir=tmp_path / "state"
    )
    with pytest.raises(StackError, match="make lambda-package"):
        Stack(config).start()
