"""A tiny HTTP server that speaks the Lambda Invoke API, scripted per test (for LambdaInvoker)."""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ScriptedResponse:
    """What the endpoint answers to one Invoke call."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def result(cls, document: Any) -> ScriptedResponse:
        """A successful invocation returning `document`."""
        return cls(body=json.dumps(document).encode())

    @classmethod
    def function_error(cls, error_type: str, message: str) -> ScriptedResponse:
        """An invocation whose function raised (X-Amz-Function-Error: Unhandled)."""
        payload = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
        return cls(body=json.dumps(payload).encode(), headers={"X-Amz-Function-Error": "Unhandled"})

    @classmethod
    def aws_error(cls, status: int, code: str, message: str = "") -> ScriptedResponse:
        """An Invoke API error (rest-json: x-amzn-ErrorType header and a JSON body)."""
        body = json.dumps({"Type": "User", "message": message}).encode()
        return cls(status=status, body=body, headers={"x-amzn-ErrorType": code})


@dataclass(frozen=True)
class ReceivedInvoke:
    """One Invoke call as the endpoint saw it."""

    function_name: str
    invocation_type: str | None
    client_context: dict[str, Any] | None
    payload: Any


class FakeLambdaEndpoint:
    """Serves POST /2015-03-31/functions/{name}/invocations on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        self.script: deque[ScriptedResponse] = deque()
        self.received: list[ReceivedInvoke] = []
        self._release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                endpoint._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL to use as the Lambda endpoint."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeLambdaEndpoint:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release delayed answers, stop serving, close the socket."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        context = request.headers.get("X-Amz-Client-Context")
        parts = request.path.split("/")
        self.received.append(
            ReceivedInvoke(
                function_name=parts[3] if len(parts) > 3 else "",
                invocation_type=request.headers.get("X-Amz-Invocation-Type"),
                client_context=json.loads(base64.b64decode(context)) if context else None,
                payload=json.loads(raw) if raw else None,
            )
        )
        answer = (
            self.script.popleft()
            if self.script
            else ScriptedResponse.aws_error(500, "ServiceException", "nothing scripted")
        )
        if answer.delay and self._release.wait(answer.delay):
            return
        try:
            request.send_response(answer.status)
            for name, value in answer.headers.items():
                request.send_header(name, value)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(answer.body)))
            request.end_headers()
            request.wfile.write(answer.body)
        except OSError:
            pass  # the client gave up (read timeout)
