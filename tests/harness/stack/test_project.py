"""Where the project's files and the stack's state are found (issue 11, points 1 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.stack import project
from harness.stack.project import ProjectError, code_dir, find_state_dir, project_dir


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HARNESS_STATE_DIR", raising=False)
    monkeypatch.delenv("HARNESS_PROJECT_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def test_state_dir_from_a_subdirectory_is_the_project_roots(tmp_path: Path) -> None:
    (tmp_path / "proj" / "tests" / "deep").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("")
    assert find_state_dir(tmp_path / "proj" / "tests" / "deep") == tmp_path / "proj" / ".harness"


def test_state_dir_prefers_an_existing_state_file_upwards(tmp_path: Path) -> None:
    (tmp_path / "outer" / ".harness").mkdir(parents=True)
    (tmp_path / "outer" / ".harness" / "state.json").write_text("{}")
    (tmp_path / "outer" / "inner").mkdir()
    assert find_state_dir(tmp_path / "outer" / "inner") == tmp_path / "outer" / ".harness"


def test_state_dir_outside_any_project_is_per_user_not_cwd(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    found = find_state_dir(bare)
    assert found == tmp_path / "xdg" / "query-harness"
    assert not (bare / ".harness").exists()


def test_state_dir_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "mine"))
    assert find_state_dir(tmp_path) == tmp_path / "mine"


def test_project_dir_is_the_checkout_here() -> None:
    assert project_dir() == project.CHECKOUT_DIR
    assert code_dir(project_dir()) == project.CHECKOUT_DIR


def test_project_dir_env_must_hold_infra_and_contracts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HARNESS_PROJECT_DIR", str(tmp_path))
    with pytest.raises(ProjectError, match="has no infra/ and contracts/"):
        project_dir()
    (tmp_path / "infra").mkdir()
    (tmp_path / "contracts").mkdir()
    assert project_dir() == tmp_path
    # the code comes from the installed packages when the directory holds only data
    assert (code_dir(tmp_path) / "lambdas").is_dir()


def test_project_dir_falls_back_to_the_wheels_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    packaged = tmp_path / "_project"
    (packaged / "infra").mkdir(parents=True)
    (packaged / "contracts").mkdir()
    monkeypatch.setattr(project, "CHECKOUT_DIR", tmp_path / "site-packages")
    monkeypatch.setattr(project, "PACKAGED_DIR", packaged)
    assert project_dir() == packaged
