"""What the CLI tells a user to type next: this command's own path, and the AWS tools' environment."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

#: moto and LocalStack accept any credentials; AWS tools refuse to sign a request without some
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def command_path() -> str:
    """How to run this CLI again from the user's shell: ``query-harness`` only if PATH finds this
    very one, else its path (``.venv/bin/query-harness``) or ``python -m harness``."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "query-harness":
        on_path = shutil.which("query-harness")
        if on_path and Path(on_path).resolve() == argv0.resolve():
            return "query-harness"
        return _shown(argv0.resolve())
    return f"{_shown(Path(sys.executable))} -m harness"


def aws_environment(edge_url: str, region: str) -> dict[str, str]:
    """The variables an AWS CLI or SDK needs for the stack: endpoint, region, credentials (the
    user's own when set, else dummy ones)."""
    env = {"AWS_ENDPOINT_URL": edge_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        env.update(DUMMY_CREDENTIALS)
    return env


def aws_lines(edge_url: str, region: str) -> list[str]:
    """Ready-to-paste shell lines for the AWS CLI against the stack."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in aws_environment(edge_url, region).items())
    return [
        f"export {exports}",
        "aws dynamodb list-tables",
        # awscli v1 ignores AWS_ENDPOINT_URL for some services (SQS among them): name it there
        f"aws sqs list-queues --endpoint-url {edge_url}",
    ]
