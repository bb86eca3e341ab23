"""Where the project's files are: ``infra/`` and ``contracts/`` (data) and the service and Lambda code.

From a checkout (or an editable install) that is the repository. From an installed wheel it is
the copy of ``infra/`` and ``contracts/`` the wheel carries in ``harness/_project/`` (see
``setup.py``), and the code is the installed ``service`` and ``lambdas`` packages.
``HARNESS_PROJECT_DIR`` (or the pytest option ``--harness-project-dir``) points at another
checkout instead, e.g. to run the stack from a branch's ``infra/`` with the installed harness.

The state of a running stack (``.harness/``) is found as git and pytest find their roots: the
nearest directory upwards that holds ``.harness/state.json``, ``pyproject.toml`` or ``.git``;
outside any project it is kept per user.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PROJECT_DIR_ENV = "HARNESS_PROJECT_DIR"
STATE_DIR_ENV = "HARNESS_STATE_DIR"
STATE_DIR_NAME = ".harness"

_HARNESS_DIR = Path(__file__).resolve().parents[1]
#: the repository, when the harness runs from a checkout
CHECKOUT_DIR = _HARNESS_DIR.parent
#: the copy of infra/ and contracts/ inside an installed wheel
PACKAGED_DIR = _HARNESS_DIR / "_project"


class ProjectError(RuntimeError):
    """The project's files cannot be found; the message says where it looked and what to set."""


def is_project(path: Path) -> bool:
    """Whether ``path`` holds the two data folders the harness provisions from."""
    return (path / "infra").is_dir() and (path / "contracts").is_dir()


def project_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``infra/`` and ``contracts/``: explicit, $HARNESS_PROJECT_DIR, the
    checkout, or the wheel's copy, in that order."""
    given = explicit if explicit is not None else os.environ.get(PROJECT_DIR_ENV) or None
    if given is not None:
        path = Path(given).expanduser().resolve()
        if not is_project(path):
            raise ProjectError(
                f"{path} (from {'the option' if explicit is not None else PROJECT_DIR_ENV}) has no "
                "infra/ and contracts/: point it at a checkout of query-service-v3"
            )
        return path
    for candidate in (CHECKOUT_DIR, PACKAGED_DIR):
        if is_project(candidate):
            return candidate
    raise ProjectError(
        f"neither {CHECKOUT_DIR} nor {PACKAGED_DIR} holds infra/ and contracts/; set "
        f"{PROJECT_DIR_ENV} to a checkout of query-service-v3"
    )


def default_project_dir() -> Path:
    """:func:`project_dir`, or the checkout when nothing is found (errors then name the files)."""
    try:
        return project_dir()
    except ProjectError:
        return CHECKOUT_DIR


def code_dir(project: Path) -> Path:
    """Where the ``service`` and ``lambdas`` packages are: the project, or where they are installed."""
    if (project / "lambdas").is_dir() and (project / "service").is_dir():
        return project
    spec = importlib.util.find_spec("lambdas")  # finds the package without running it
    if spec is None or spec.origin is None:
        raise ProjectError(f"the 'lambdas' package is neither in {project} nor installed")
    return Path(spec.origin).resolve().parents[1]


def find_state_dir(start: Path | None = None) -> Path:
    """``.harness`` of the project the current directory is in, or a per-user one outside any.

    $HARNESS_STATE_DIR wins. Otherwise walk up from ``start`` as git and pytest do: the first
    directory holding ``.harness/state.json``, ``pyproject.toml`` or ``.git`` holds it. Outside any
    project the state is kept per user (``$XDG_STATE_HOME/query-harness``), so ``up`` in /tmp never
    writes /tmp/.harness and ``status`` finds that stack from anywhere outside a project.
    """
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).expanduser()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / STATE_DIR_NAME / "state.json").is_file():
            return directory / STATE_DIR_NAME
        if (directory / "pyproject.toml").is_file() or (directory / ".git").exists():
            return directory / STATE_DIR_NAME
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "query-harness"
