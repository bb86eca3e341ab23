"""The wheel built from this repository is the whole harness; the service image's is the service alone."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.distribution.wheels import FULL_TREE, SERVICE_TREE, build_wheel, copy_tree


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _metadata(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = (n for n in archive.namelist() if n.endswith(f".dist-info/{name}"))
        return archive.read(path).decode()


@pytest.fixture(scope="module")
def full_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("full")
    return build_wheel(copy_tree(FULL_TREE, tmp / "src"), tmp / "dist")


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("service")
    return build_wheel(copy_tree(SERVICE_TREE, tmp / "src"), tmp / "dist")


def test_wheel_carries_infra_and_contracts_under_harness(full_wheel: Path) -> None:
    names = set(_names(full_wheel))
    for data in (
        "harness/_project/infra/ecs/task-definition.json",
        "harness/_project/infra/api-gateway/internal-api.json",
        "harness/_project/infra/terraform/main.tf",
        "harness/_project/contracts/openapi.yaml",
        "harness/_project/contracts/schemas/command-record.schema.json",
        "harness/_project/contracts/seed/command-records.json",
        "harness/_project/contracts/declared-changes.yaml",
    ):
        assert data in names, data


def test_wheel_top_level_names_are_the_cards_folders(full_wheel: Path) -> None:
    top = {name.split("/")[0] for name in _names(full_wheel) if ".dist-info/" not in name}
    assert top == {"service", "lambdas", "harness"}


def test_wheel_plugin_entry_point_is_the_guarded_shim(full_wheel: Path) -> None:
    entry_points = _metadata(full_wheel, "entry_points.txt")
    assert "query_harness = harness.pytest_entry" in entry_points
    assert "query-harness = harness.cli.app:main" in entry_points


def test_wheel_base_requirements_are_the_services_only(full_wheel: Path) -> None:
    requires = [
        line.split(":", 1)[1].strip()
        for line in _metadata(full_wheel, "METADATA").splitlines()
        if line.startswith("Requires-Dist:")
    ]
    base = {Requirement(r).name for r in requires if "extra ==" not in r}
    assert base == {"fastapi", "uvicorn", "pydantic", "pydantic-settings", "boto3", "botocore"}


def test_service_image_wheel_holds_the_service_alone(service_wheel: Path) -> None:
    top = {name.split("/")[0] for name in _names(service_wheel) if ".dist-info/" not in name}
    assert top == {"service"}
    assert not any(name.endswith("entry_points.txt") for name in _names(service_wheel))
