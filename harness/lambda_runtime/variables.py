"""The environment variables of a function's execution environment: what every worker starts
from, the function's own variables, then Lambda's reserved ones (the Lambda developer guide,
"Defined runtime environment variables"), and the names a function may not set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from harness.lambda_runtime.config import FunctionConfig

__all__ = [
    "RESERVED_ENVIRONMENT_KEYS",
    "base_environment",
    "function_environment",
    "region_of",
]

RESERVED_ENVIRONMENT_KEYS = frozenset(
    """
    _HANDLER _X_AMZN_TRACE_ID AWS_DEFAULT_REGION AWS_REGION AWS_EXECUTION_ENV
    AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_MEMORY_SIZE AWS_LAMBDA_FUNCTION_VERSION
    AWS_LAMBDA_INITIALIZATION_TYPE AWS_LAMBDA_LOG_GROUP_NAME AWS_LAMBDA_LOG_STREAM_NAME
    AWS_ACCESS_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    AWS_LAMBDA_RUNTIME_API LAMBDA_TASK_ROOT LAMBDA_RUNTIME_DIR
    """.split()
)  # variables a function may not set (CreateFunction rejects them)


def base_environment(python: str) -> dict[str, str]:
    """What every worker's environment starts from (and the fork server runs with)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "en_US.UTF-8", "TZ": ":UTC"}
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not _is_current_interpreter(python):  # let it reach this environment's packages
        python_path.append(sysconfig.get_paths()["purelib"])
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(python_path)
    return env


def function_environment(
    config: FunctionConfig,
    *,
    python: str,
    region: str,
    endpoint_url: str,
    credentials: tuple[str, str],
    role_credentials: Callable[[str, str], dict[str, str]] | None,
) -> dict[str, str]:
    """The worker's environment: defaults, then the function's variables, then Lambda's."""
    env = base_environment(python)
    env.update(config.environment)
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": region_of(config.arn) or region,
            "AWS_DEFAULT_REGION": region_of(config.arn) or region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{_python_version(python)}",
            "_HANDLER": config.handler,
            "LAMBDA_TASK_ROOT": str(config.code_dir),
            "AWS_ACCESS_KEY_ID": credentials[0],
            "AWS_SECRET_ACCESS_KEY": credentials[1],
            "AWS_ENDPOINT_URL": endpoint_url,
        }
    )
    if config.role and role_credentials is not None:
        env.update(role_credentials(config.role, config.name))
    return env


_VERSIONS: dict[str, str] = {}


def _is_current_interpreter(python: str) -> bool:
    """True for this process's interpreter (not resolving symlinks: a venv's python is one)."""
    found = shutil.which(python) or python
    return os.path.abspath(found) == os.path.abspath(sys.executable)


def _python_version(python: str) -> str:
    """``3.11`` for the interpreter at ``python`` (asked once, then remembered)."""
    if _is_current_interpreter(python):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if python not in _VERSIONS:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        _VERSIONS[python] = out.stdout.strip()
    return _VERSIONS[python]


def region_of(arn: str) -> str:
    """``arn:aws:lambda:<region>:...`` → ``<region>`` (empty when not an ARN)."""
    parts = arn.split(":", 5)
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else ""
