"""Role credentials for the stack's components, as AWS hands them out.

- ECS tasks: the container-credentials endpoint. ECS gives a task's containers
  ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` (served on 169.254.170.2); botocore also reads
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (loopback hosts allowed) with the token in
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, sent as the ``Authorization`` header. The answer is
  ``{"RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}``. Here a loopback
  server answers it with the result of STS AssumeRole on the endpoint for the task role, renewed
  before it expires.
- Lambda functions: AWS puts the execution role's session credentials in the function's
  environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ContainerCredentialsServer",
    "ExecutionRoleCredentials",
    "RoleCredentials",
    "lambda_environment",
]

logger = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0  # renew this long before the session expires
CREDENTIALS_PATH = "/v2/credentials/"


class RoleCredentials:
    """Session credentials of one role, from STS AssumeRole on the endpoint, cached."""

    def __init__(
        self,
        sts_client: Any,
        role_arn: str,
        session_name: str,
        *,
        duration_s: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sts = sts_client
        self.role_arn = role_arn
        self.session_name = session_name
        self.duration_s = duration_s
        self.clock = clock
        self._current: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        """``{"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}``, renewed in time."""
        with self._lock:
            current = self._current
            if current is None or current["Expiration"].timestamp() - REFRESH_MARGIN_S < (
                self.clock()
            ):
                answer = self.sts.assume_role(
                    RoleArn=self.role_arn,
                    RoleSessionName=self.session_name,
                    DurationSeconds=self.duration_s,
                )
                current = self._current = dict(answer["Credentials"])
            return current


def lambda_environment(credentials: dict[str, Any]) -> dict[str, str]:
    """The variables Lambda sets from the execution role's session."""
    return {
        "AWS_ACCESS_KEY_ID": str(credentials["AccessKeyId"]),
        "AWS_SECRET_ACCESS_KEY": str(credentials["SecretAccessKey"]),
        "AWS_SESSION_TOKEN": str(credentials["SessionToken"]),
    }


class ExecutionRoleCredentials:
    """Lambda's execution-role sessions: ``(role ARN, function name) -> environment variables``.

    The session is named after the function, as Lambda names it
    (``assumed-role/<role>/<function>``). ``sts`` makes the STS client on first use.
    """

    def __init__(self, sts: Callable[[], Any]) -> None:
        self._sts = sts
        self._client: Any = None
        self._roles: dict[tuple[str, str], RoleCredentials] = {}
        self._lock = threading.Lock()

    def __call__(self, role_arn: str, function_name: str) -> dict[str, str]:
        with self._lock:
            if self._client is None:
                self._client = self._sts()
            key = (role_arn, function_name)
            if key not in self._roles:
                self._roles[key] = RoleCredentials(self._client, role_arn, function_name[:64])
            role = self._roles[key]
        return lambda_environment(role.get())


class ContainerCredentialsServer:
    """A loopback container-credentials endpoint for one role (a task role)."""

    def __init__(
        self, role: RoleCredentials, *, host: str = "127.0.0.1", port: int = 0, wait_s: float = 1.5
    ) -> None:
        self.role = role
        #: how long one request waits for AssumeRole to succeed (botocore's client gives up
        #: after 2 s and tries 3 times: tasks may start while the endpoint is still booting)
        self.wait_s = wait_s
        self.token = secrets.token_urlsafe(24)
        self.path = CREDENTIALS_PATH + secrets.token_hex(16)
        self.requests = 0  # answered requests, for tests and status
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def environment(self) -> dict[str, str]:
        """What a task's containers get so that botocore finds the endpoint."""
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token,
        }

    def start(self) -> ContainerCredentialsServer:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="container-credentials", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one GET."""
        if path != self.path:
            return 404, {"code": "NotFound", "message": f"no credentials at {path}"}
        if authorization is None or not secrets.compare_digest(authorization, self.token):
            return 401, {"code": "AccessDenied", "message": "invalid authorization token"}
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                session = self.role.get()
                break
            except Exception as exc:  # noqa: BLE001 - retried, then a clear 500, and logged
                if time.monotonic() < deadline:  # the endpoint may still be starting
                    time.sleep(0.1)
                    continue
                logger.warning("AssumeRole %s failed: %s", self.role.role_arn, exc)
                return 500, {"code": "InternalError", "message": f"AssumeRole failed: {exc}"}
        self.requests += 1
        expiration: datetime = session["Expiration"]
        return 200, {
            "RoleArn": self.role.role_arn,
            "AccessKeyId": session["AccessKeyId"],
            "SecretAccessKey": session["SecretAccessKey"],
            "Token": session["SessionToken"],
            "Expiration": expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _handler(server: ContainerCredentialsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            status, body = server.answer(self.path, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("credentials %s", format % args)

    return Handler
