"""Child side of the Lambda runtime: imports one handler once, then serves invokes over a pipe.

Run as ``python -B path/to/worker.py`` (or ``python -m harness.lambda_runtime.worker``) with the
function's environment, ``LAMBDA_TASK_ROOT`` as the working directory and the protocol on
stdin/stdout, or called as ``main(imported)`` in a child of ``forkserver.py``.
Standard library only, so any Python 3 interpreter can run it.

Wire format, both directions: ``kind (1 byte) | length (4 bytes, big-endian) | body``.

- parent -> worker ``V`` (invoke): ``INVOKE_HEAD`` (JSON header length) + JSON header
  ``{"id", "deadline_ms", "arn", "cc"}`` + the event payload (JSON bytes).
- worker -> parent ``I`` (init done, sent once), ``L`` (complete log lines, UTF-8, sent as the
  function writes them so a timeout or crash loses nothing), ``R`` (result): ``RESULT_HEAD``
  (ok, init_failed, duration ms, max RSS KB) + the JSON response or error payload.
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import logging
import os
import resource
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

FRAME_HEAD = struct.Struct(">cI")
INVOKE_HEAD = struct.Struct(">I")
RESULT_HEAD = struct.Struct(">BBdQ")
KIND_INVOKE = b"V"
KIND_INIT = b"I"
KIND_LOG = b"L"
KIND_RESULT = b"R"

Handler = Callable[[Any, Any], Any]
_ERROR_LINE_SEPARATOR = "\r"  # AWS joins a multi-line error report into one log event this way
_ERROR_INDENT = "\u00a0"


class _Channel:
    """Framed, thread-safe writer and blocking reader over two raw file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._lock = threading.Lock()
        self._buffer = bytearray()

    def send(self, kind: bytes, body: bytes) -> None:
        """Write one frame."""
        data = memoryview(FRAME_HEAD.pack(kind, len(body)) + body)
        with self._lock:
            while data:
                written = os.write(self._write_fd, data)
                data = data[written:]

    def receive(self) -> tuple[bytes, bytes] | None:
        """Read one frame, or None when the parent closed the pipe."""
        buffer = self._buffer
        while True:
            if len(buffer) >= FRAME_HEAD.size:
                kind, length = FRAME_HEAD.unpack_from(buffer)
                end = FRAME_HEAD.size + length
                if len(buffer) >= end:
                    body = bytes(buffer[FRAME_HEAD.size : end])
                    del buffer[:end]
                    return kind, body
                wanted = end - len(buffer)
            else:
                wanted = FRAME_HEAD.size
            chunk = os.read(self._read_fd, max(wanted, 65536))
            if not chunk:
                return None
            buffer += chunk


class _LogStream(io.TextIOBase):
    """sys.stdout / sys.stderr replacement that ships every complete line to the parent."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending.append(text)
            if "\n" in text:
                complete, _, rest = "".join(self._pending).rpartition("\n")
                self._pending = [rest] if rest else []
                self._channel.send(KIND_LOG, complete.encode("utf-8", "replace"))
        return len(text)

    def drain(self) -> None:
        """Ship a trailing partial line, if any."""
        with self._lock:
            if self._pending:
                text = "".join(self._pending)
                self._pending = []
                self._channel.send(KIND_LOG, text.encode("utf-8", "replace"))


class ClientContext:
    """Client context as AWS's Python runtime exposes it: ``client``, ``custom``, ``env``."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, raw: dict[str, Any]) -> None:
        client = raw.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = raw.get("custom")
        self.env = raw.get("env")


class Client:
    """The ``client`` part of a client context (mobile SDK fields)."""

    __slots__ = (
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __init__(self, raw: dict[str, Any]) -> None:
        for field in self.__slots__:
            setattr(self, field, raw.get(field))


class CognitoIdentity:
    """Identity of a Cognito caller; AWS passes one with both fields None for other callers."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The ``context`` argument, with the attributes of AWS's Python runtime."""

    def __init__(self, request_id: str, arn: str, deadline_ms: int, client_context: Any) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = arn
        self.client_context = (
            ClientContext(client_context) if isinstance(client_context, dict) else None
        )
        self.identity = CognitoIdentity()
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the runtime kills this invocation."""
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        """Write to the function's log, as ``context.log`` does on AWS."""
        sys.stdout.write(str(message))


class _Fault(Exception):
    """A runtime error with an AWS ``Runtime.*`` error type."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


_current_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


class _StdoutHandler(logging.Handler):
    """Root handler writing to whatever sys.stdout is at emit time, like AWS's."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the function
            self.handleError(record)


def _setup_logging() -> None:
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)


def _load_handler(name: str) -> Handler:
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{name}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            trace,
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler  # type: ignore[no-any-return]


def _error_from_exception(exc: BaseException, request_id: str) -> dict[str, Any]:
    if isinstance(exc, _Fault):
        return {
            "errorMessage": exc.message,
            "errorType": exc.error_type,
            "requestId": request_id,
            "stackTrace": exc.trace,
        }
    frames = traceback.extract_tb(exc.__traceback__)
    frames = traceback.StackSummary.from_list(
        [frame for frame in frames if frame.filename != __file__]
    )
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _log_error(error: dict[str, Any]) -> None:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    lines.append("Traceback (most recent call last):")
    for element in error["stackTrace"]:
        for line in str(element).splitlines():
            stripped = line.lstrip(" ")
            lines.append(_ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(_ERROR_LINE_SEPARATOR.join(lines) + "\n")


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


_ENCODER = _Encoder(ensure_ascii=False)


def _marshal(response: Any) -> bytes:
    if isinstance(response, bytes):
        return response
    try:
        return _ENCODER.encode(response).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - any encoder failure is a MarshalError on AWS
        raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def _invoke(handler: Handler, header: dict[str, Any], payload: bytes) -> tuple[bool, bytes]:
    global _current_request_id
    request_id = str(header["id"])
    _current_request_id = request_id
    try:
        event = json.loads(payload)
        context = LambdaContext(request_id, header["arn"], int(header["deadline_ms"]), header["cc"])
        return True, _marshal(handler(event, context))
    except Exception as exc:  # noqa: BLE001 - the function's failure is the invocation's result
        error = _error_from_exception(exc, request_id)
        _log_error(error)
        return False, json.dumps(error).encode("utf-8")


def _serve(channel: _Channel, stream: _LogStream, imported: Callable[[bool], None]) -> int:
    handler: Handler | None = None
    init_error: dict[str, Any] | None = None
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as exc:  # noqa: BLE001 - reported on every invoke, as AWS does
        init_error = _error_from_exception(exc, "")
    stream.drain()
    channel.send(KIND_INIT, repr(time.time()).encode())  # when init ended, for Init Duration
    imported(handler is None)
    while True:
        frame = channel.receive()
        if frame is None:
            return 0
        _, body = frame
        (header_length,) = INVOKE_HEAD.unpack_from(body)
        start = INVOKE_HEAD.size
        header = json.loads(body[start : start + header_length])
        payload = body[start + header_length :]
        began = time.perf_counter()
        if handler is None:
            assert init_error is not None
            _log_error(init_error)
            ok, result = False, json.dumps(init_error).encode("utf-8")
        else:
            ok, result = _invoke(handler, header, payload)
        duration_ms = (time.perf_counter() - began) * 1000.0
        stream.drain()
        max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        head = RESULT_HEAD.pack(ok, handler is None, duration_ms, max_rss_kb)
        channel.send(KIND_RESULT, head + result)
        imported(True)  # clients are often made on the first call, not at init


def main(imported: Callable[[bool], None] = lambda last: None) -> int:
    """Take over stdin/stdout for the protocol and serve invokes until the parent hangs up.

    ``imported(last)`` is called after init and after each invocation (``last``: the function
    is not expected to import more); the fork server learns from it what to preload.
    """
    channel = _Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    try:
        os.dup2(2, 1)  # fd-level writes (C code, child processes) go to the harness's stderr
    except OSError:  # the harness runs without a stderr
        os.dup2(devnull, 1)
    os.close(devnull)
    stream = _LogStream(channel)
    sys.stdout = sys.stderr = stream
    _setup_logging()
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    script_dir = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] in ("", script_dir, os.getcwd()):
        del sys.path[0]
    sys.path.insert(0, task_root)
    return _serve(channel, stream, imported)


if __name__ == "__main__":
    sys.exit(main())
