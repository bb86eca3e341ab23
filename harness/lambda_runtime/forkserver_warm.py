"""What the Lambda fork server prepares before any environment reports: read from the code.

A burst right after ``up`` forks dozens of environments before the first one has finished its
first invocation (and so before any has told the server what it imported), so each of them
would import the function's libraries and build its first botocore client from scratch. When a
function is registered, the server reads its code instead (``ast``; nothing of it runs) and

- imports the modules it imports that live outside its code (site-packages, the standard
  library), as it does for those the children report;
- builds, once and with placeholder credentials, a client of each AWS service the code names
  in a ``client("...")`` / ``resource("...")`` call, then drops it. Nothing is sent; what stays
  is botocore's and the standard library's module-level state a first client fills (parsed
  models and rules, compiled patterns, memoised answers), which every fork then finds filled.

It also discovers pydantic's plugins once (see :func:`share_pydantic_plugins`).
Standard library only, like ``forkserver_process.py``, which loads it beside itself.
"""

from __future__ import annotations

import ast
import gc
import os
import sys
from typing import Any

__all__ = ["forget_shared_plugins", "scan", "share_pydantic_plugins", "warm_clients"]

#: a code directory with more Python files than this is only partly read
MAX_FILES = 500
MAX_FILE_BYTES = 1 << 20
_FACTORIES = ("client", "resource")


def scan(code_dir: str, own: set[str]) -> tuple[list[str], list[str]]:
    """Modules the code imports from outside itself, and the AWS services it makes clients of.

    ``own``: the top-level names the function's code provides (never imported by the server).
    """
    modules: dict[str, None] = {}
    services: dict[str, None] = {}
    for path in _python_files(code_dir):
        imported, named = _read(path)
        modules.update((n, None) for n in imported if n.partition(".")[0] not in own)
        services.update((n, None) for n in named)
    return list(modules), list(services)


#: what a file imports and the services it names, by path, while its stat stays the same
_READ: dict[str, tuple[tuple[int, int], list[str], list[str]]] = {}


def _read(path: str) -> tuple[list[str], list[str]]:
    try:
        with open(path, "rb") as source:
            stat = os.fstat(source.fileno())
            key = (stat.st_mtime_ns, stat.st_size)
            if path in _READ and _READ[path][0] == key:  # registered again, unchanged
                return _READ[path][1], _READ[path][2]
            tree = ast.parse(source.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES], path)
    except (OSError, SyntaxError, ValueError):
        return [], []  # the child's own import reports it
    modules: list[str] = []
    services: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Call) and (service := _service_name(node)) is not None:
            services.append(service)
    _READ[path] = (key, modules, services)
    return modules, services


def _python_files(code_dir: str) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".py"))
        if len(found) >= MAX_FILES:
            return found[:MAX_FILES]
    return found


def _service_name(call: ast.Call) -> str | None:
    """``x.client("dynamodb")``, ``client(service_name="s3")``: the literal service name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in _FACTORIES:
        return None
    arguments = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "service_name")]
    for argument in arguments:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    return None


def warm_clients(services: list[str], warmed: set[str]) -> None:
    """Build (and drop) one client per service not yet built; nothing is sent anywhere."""
    todo = [s for s in services if s not in warmed]
    if not todo or "boto3.session" not in sys.modules:
        return
    warmed.update(todo)
    session_module = sys.modules["boto3.session"]
    for service in todo:
        try:
            session = session_module.Session(
                aws_access_key_id="fork-server",
                aws_secret_access_key="fork-server",  # noqa: S106 - a placeholder, never sent
                region_name="us-east-1",
            )
            session.client(service)
        except Exception:  # noqa: BLE001 - not a service here: the child finds out itself
            pass
    gc.collect()  # botocore's clients hold cycles: collected before the next fork freezes them


def share_pydantic_plugins() -> None:
    """Discover pydantic's plugins once for every fork.

    A process's first pydantic model scans every installed distribution's entry points for
    plugins (~15 ms CPU per environment); a child whose function could find others forgets the
    answer (:func:`forget_shared_plugins`).
    """
    plugins = sys.modules.get("pydantic.plugin._loader")
    if plugins is not None and "PYDANTIC_DISABLE_PLUGINS" not in os.environ:
        try:
            plugins.get_plugins()
        except Exception:  # noqa: BLE001 - the child discovers them itself
            plugins._plugins = None  # type: ignore[attr-defined]


def forget_shared_plugins(env: dict[str, Any], paths: list[str]) -> None:
    """In a child: rediscover pydantic's plugins if the function's environment or code differ.

    pydantic reads ``PYDANTIC_DISABLE_PLUGINS`` while discovering, and a distribution the
    function ships (``*.dist-info``, ``*.egg-info`` in its code or PYTHONPATH) may add some.
    """
    plugins = sys.modules.get("pydantic.plugin._loader")
    if plugins is None or plugins._plugins is None:
        return
    shipped = False
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        shipped = shipped or any(n.endswith((".dist-info", ".egg-info")) for n in entries)
    if shipped or "PYDANTIC_DISABLE_PLUGINS" in env:
        plugins._plugins = None  # type: ignore[attr-defined]
