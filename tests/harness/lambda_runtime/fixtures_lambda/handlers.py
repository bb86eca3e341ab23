"""Sample Lambda handlers the runtime tests (tests/harness/lambda_runtime/) register."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

print("init: handlers module imported")
LOGGER = logging.getLogger(__name__)


def noop(event: Any, context: Any) -> None:
    """Do nothing (benchmark handler)."""
    return None


def echo(event: Any, context: Any) -> dict[str, Any]:
    """Return the event and the context fields."""
    return {
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "identity_id": context.identity.cognito_identity_id,
        "has_client_context": context.client_context is not None,
        "pid": os.getpid(),
    }


def client_context(event: Any, context: Any) -> dict[str, Any]:
    """Return the client context's parts."""
    cc = context.client_context
    return {
        "custom": cc.custom,
        "env": cc.env,
        "installation_id": cc.client.installation_id if cc.client else None,
    }


def environment(event: Any, context: Any) -> dict[str, str]:
    """Return the worker's environment and cwd."""
    return {**os.environ, "__cwd__": os.getcwd()}


def fail(event: Any, context: Any) -> None:
    """Raise a KeyError."""
    raise KeyError("missing-key")


def marshal(event: Any, context: Any) -> set[int]:
    """Return something JSON cannot encode."""
    return {1, 2}


def sleep(event: Any, context: Any) -> dict[str, Any]:
    """Print, then sleep event['seconds']."""
    print("going to sleep")
    time.sleep(float(event["seconds"]))
    return {"slept": event["seconds"]}


def crash(event: Any, context: Any) -> None:
    """Kill the process without a word."""
    print("about to crash")
    os._exit(3)


def chatty(event: Any, context: Any) -> str:
    """Write to stdout, stderr and the logging module."""
    print("hello from stdout")
    print("second line\nthird line")
    import sys

    sys.stderr.write("hello from stderr\n")
    logging.getLogger().warning("a warning via logging")
    LOGGER.info("info is below the default level")
    return "ok"


def big_log(event: Any, context: Any) -> str:
    """Write more than 4 KB of log."""
    for i in range(200):
        print(f"line {i:04d} " + "x" * 40)
    return "ok"


def record_then_fail(event: Any, context: Any) -> None:
    """Append a line to event['path'], then raise (Event retry test)."""
    with Path(event["path"]).open("a") as f:
        f.write(context.aws_request_id + "\n")
    raise RuntimeError("always fails")


def block(event: Any, context: Any) -> str:
    """Announce start in event['dir'], then wait until a 'release' file appears there."""
    directory = Path(event["dir"])
    (directory / f"started-{context.aws_request_id}").touch()
    while not (directory / "release").exists():
        time.sleep(0.01)
    return json.dumps("released")


def huge(event: Any, context: Any) -> str:
    """Return more than Lambda's 6 MB response limit."""
    return "x" * (6 * 1024 * 1024 + 200)


def huge_counted(event: Any, context: Any) -> str:
    """Append a line to event['path'], then return more than 6 MB (Event result test)."""
    with Path(event["path"]).open("a") as f:
        f.write(context.aws_request_id + "\n")
    return "x" * (6 * 1024 * 1024 + 200)
