"""The endpoint's Lambda API: Invoke runs on our runtime; moto keeps the control plane."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from harness.aws.moto_app import HttpRequest, HttpResponse
from harness.lambda_runtime.invoke_http import (
    PreparedInvoke,
    error_response,
    invoke_answer,
    runtime_error_answer,
)
from harness.lambda_runtime.runtime import FunctionConfig, LambdaRuntime, LambdaRuntimeError

logger = logging.getLogger("harness.lambda")
#: how a function's log line says its level: powertools' JSON, or the AWS runtime's prefix
_LINE_LEVELS = tuple(
    (tag.format(name), getattr(logging, name))
    for name in ("CRITICAL", "ERROR", "WARNING")
    for tag in ('"level":"{}"', '"level": "{}"', "[{}]")
)

INVOKE_PATH = re.compile(
    r"^/\d{4}-\d{2}-\d{2}/functions/(?P<name>[^/]+)/(?P<kind>invocations|invoke-async)/?$"
)
FUNCTIONS_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions(?:/(?P<name>[^/]+))?(?P<rest>/.*)?$")
FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[A-Za-z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
CLIENT_CONTEXT_MAX_BYTES = 3583


def parse_function_name(raw: str) -> tuple[str, str | None] | None:
    """(name, qualifier) from a function name, partial ARN or ARN; None when malformed."""
    match = FUNCTION_NAME.match(raw)
    if match is None:
        return None
    return match.group("name"), match.group("qualifier")


def function_arn(account: str, region: str, name: str) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<name>``: the key of a function everywhere."""
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


class LambdaApi:
    """Serves Invoke from the harness runtime and mirrors moto's function metadata into it.

    Functions are kept per account and region, as AWS and moto keep them: the request's
    credential scope says which (the endpoint passes ``account`` and ``region`` in). ``guard``
    is entered around every direct read or write of moto's state (the endpoint's reset gate).
    """

    def __init__(
        self,
        runtime: LambdaRuntime,
        code_root: Path,
        guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._runtime = runtime
        self._code_root = code_root
        self._guard = guard
        self._lock = threading.Lock()
        self._logs_lock = threading.Lock()
        self._fingerprints: dict[str, str] = {}  # function ARN -> what was registered
        self._streams: dict[str, str] = {}  # function ARN -> CloudWatch log stream of it

    # ---- Invoke -------------------------------------------------------------------------

    def invoke(
        self, request: HttpRequest, raw_name: str, kind: str, account: str, region: str
    ) -> HttpResponse:
        """Serve POST /2015-03-31/functions/{name}/invocations (and the old invoke-async)."""
        call = self.prepare(request, raw_name, kind, account, region)
        if isinstance(call, HttpResponse):
            return call
        assert call is not None  # prepare registers an unregistered function here
        try:
            result = self._runtime.invoke(
                call.arn,
                request.body,
                invocation_type=call.invocation_type,
                client_context=call.client_context,
                tail=call.tail,
            )
        except LambdaRuntimeError as exc:
            return runtime_error_answer(exc, call.arn)
        return invoke_answer(call, result)

    async def invoke_warm(self, request: HttpRequest, call: PreparedInvoke) -> HttpResponse | None:
        """invoke() of a prepared RequestResponse call on the running event loop, when a warm
        environment takes it at once (LambdaRuntime.invoke_warm); None when it must go through
        invoke() on a thread (Event, DryRun, a cold start, a live fault)."""
        if call.invocation_type != "RequestResponse" or call.kind != "invocations":
            return None
        try:
            result = await self._runtime.invoke_warm(
                call.arn, request.body, client_context=call.client_context, tail=call.tail
            )
        except LambdaRuntimeError as exc:
            return runtime_error_answer(exc, call.arn)
        return None if result is None else invoke_answer(call, result)

    def prepare(
        self,
        request: HttpRequest,
        raw_name: str,
        kind: str,
        account: str,
        region: str,
        *,
        register: bool = True,
    ) -> PreparedInvoke | HttpResponse | None:
        """An Invoke request's checks and the version it runs (moto's metadata, under the
        guard): the call to make, or the 4xx answer. With ``register=False`` a function the
        runtime does not have yet gives None instead of being registered (unpacking its code)."""
        parsed = parse_function_name(raw_name)
        if parsed is None:
            return error_response(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{raw_name}' at 'functionName' "
                "failed to satisfy constraint: Member must satisfy regular expression "
                "pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            )
        name, qualifier = parsed
        qualifier = _query_param(request, "Qualifier") or qualifier
        if kind == "invoke-async":
            invocation_type = "Event"
        else:
            invocation_type = request.header("x-amz-invocation-type") or "RequestResponse"
        if invocation_type not in INVOCATION_TYPES:
            return error_response(
                400,
                "InvalidParameterValueException",
                f"Unsupported invocation type: {invocation_type}; "
                f"expected one of {', '.join(INVOCATION_TYPES)}",
            )
        log_type = request.header("x-amz-log-type") or "None"
        if log_type not in ("None", "Tail"):
            return error_response(
                400,
                "InvalidParameterValueException",
                f"Unsupported log type: {log_type}; expected None or Tail",
            )
        client_context = request.header("x-amz-client-context")
        if client_context is not None and (problem := _check_client_context(client_context)):
            return error_response(400, "InvalidRequestContentException", problem)
        arn = function_arn(account, region, name)
        with self._guard():
            executed = self._executed_version(account, region, name, qualifier)
            if executed is None:
                shown = f"{arn}:{qualifier}" if qualifier else arn
                return error_response(
                    404, "ResourceNotFoundException", f"Function not found: {shown}"
                )
            if arn not in self._fingerprints:
                if not register:
                    return None
                self.sync(account, region, name)
        return PreparedInvoke(
            arn=arn,
            kind=kind,
            executed=executed,
            invocation_type=invocation_type,
            client_context=client_context,
            tail=log_type == "Tail" and invocation_type == "RequestResponse",
        )

    def _executed_version(
        self, account: str, region: str, name: str, qualifier: str | None
    ) -> str | None:
        """The version a qualifier resolves to in moto's metadata; None when it does not exist."""
        backend = _lambda_backend(account, region)
        try:
            function = backend.get_function(name, None if qualifier == "$LATEST" else qualifier)
        except Exception:  # moto raises its UnknownFunctionException (and others) here
            return None
        if not qualifier or qualifier == "$LATEST":
            return "$LATEST"
        version = str(getattr(function, "version", "$LATEST"))
        return "$LATEST" if version in ("", "0") else version

    # ---- control plane -----------------------------------------------------------------

    def check_control_plane(self, request: HttpRequest) -> HttpResponse | None:
        """Reject a zip Lambda could not unpack before moto stores it (AWS does the same)."""
        if request.method not in ("POST", "PUT") or not FUNCTIONS_PATH.match(request.path):
            return None
        try:
            document = json.loads(request.body or b"{}")
        except ValueError:
            return None  # moto answers malformed JSON itself
        zipped = document.get("ZipFile") if isinstance(document, dict) else None
        if zipped is None and isinstance(document, dict):
            zipped = (
                (document.get("Code") or {}).get("ZipFile")
                if isinstance(document.get("Code"), dict)
                else None
            )
        if not isinstance(zipped, str):
            return None
        try:
            with zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped, validate=True))) as archive:
                if archive.testzip() is not None:
                    raise zipfile.BadZipFile("corrupt member")
        except (binascii.Error, zipfile.BadZipFile, ValueError) as exc:
            return error_response(
                400,
                "InvalidParameterValueException",
                f"Could not unzip uploaded file. Please check your file, then try to "
                f"upload again. ({exc})",
            )
        return None

    def after_control_plane(
        self, request: HttpRequest, response: HttpResponse, account: str, region: str
    ) -> None:
        """After moto changed a function, bring the runtime's registration up to date."""
        if response.status >= 300 or request.method in ("GET", "HEAD", "OPTIONS"):
            return
        match = FUNCTIONS_PATH.match(request.path)
        if match is None:
            return
        raw = match.group("name")
        if raw is None:
            try:
                raw = str(json.loads(response.body)["FunctionName"])
            except (ValueError, KeyError, TypeError):
                return
        parsed = parse_function_name(raw)
        if parsed is None:
            return
        name = parsed[0]
        if request.method == "DELETE" and not match.group("rest"):
            if not _query_param(request, "Qualifier"):
                self.forget(function_arn(account, region, name))
            return
        self.sync(account, region, name)

    def sync(self, account: str, region: str, name: str) -> None:
        """Register (or re-register) moto's $LATEST of `name` with the runtime."""
        try:
            function: Any = _lambda_backend(account, region).get_function(name)
        except Exception:
            logger.warning("function %s not found in %s/%s; not registered", name, account, region)
            return
        code: bytes = getattr(function, "code_bytes", b"") or b""
        if not code:
            logger.warning("function %s has no zip code (image functions cannot run here)", name)
            return
        digest = hashlib.sha256(code).hexdigest()
        arn = str(function.function_arn)
        environment = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
        reserved = function.reserved_concurrency
        config = FunctionConfig(
            name=name,
            arn=arn,
            handler=str(function.handler),
            code_dir=self._unpack(f"{region}-{name}", digest, code),
            environment=environment,
            timeout_s=float(function.timeout),
            memory_mb=int(function.memory_size),
            reserved_concurrency=int(reserved) if reserved not in (None, "") else None,
            role=str(function.role or ""),
        )
        fingerprint = repr((digest, config))
        with self._lock:  # the runtime is called outside the lock: it may call log_sink
            previous = self._fingerprints.get(arn)
            if previous == fingerprint:
                return
            self._fingerprints[arn] = fingerprint
            self._streams[arn] = (
                time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{uuid.uuid4().hex}"
            )
        self._runtime.register(config)  # replaces the warm workers of an earlier version
        logger.info(
            "registered function %s (handler %s, code %s)", name, config.handler, digest[:12]
        )

    def forget(self, arn: str) -> None:
        """Unregister a deleted function (by ARN) and drop its unpacked code."""
        with self._lock:
            registered = self._fingerprints.pop(arn, None) is not None
            self._streams.pop(arn, None)
        if registered:
            self._runtime.unregister(arn)
        _, _, _, region, _, name = _arn_parts(arn)
        for stale in self._code_root.glob(f"{region}-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def reset(self) -> None:
        """Forget every function (the runtime is reset by its owner) and its unpacked code."""
        with self._lock:
            self._fingerprints.clear()
            self._streams.clear()
        for entry in self._code_root.iterdir():
            shutil.rmtree(entry, ignore_errors=True)

    def _unpack(self, name: str, digest: str, code: bytes) -> Path:
        target = self._code_root / f"{name}-{digest[:16]}"
        if not target.is_dir():
            staging = self._code_root / f".{name}-{uuid.uuid4().hex}"
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(staging)
            try:
                staging.rename(target)
            except OSError:  # another thread unpacked the same code first
                shutil.rmtree(staging, ignore_errors=True)
        return target

    # ---- logs ---------------------------------------------------------------------------

    def log_sink(self, arn: str, lines: list[str]) -> None:
        """Write a function's log lines to CloudWatch Logs /aws/lambda/<name> (in the function's
        account and region) and to the log."""
        _, _, _, region, account, name = _arn_parts(arn)
        for line in lines:
            # a function's ERROR/WARNING lines (JSON "level" or AWS's "[ERROR]" prefix) keep their level
            level = next(
                (lvl for tag, lvl in _LINE_LEVELS if tag in line[:80]), logging.INFO
            )
            logger.log(level, "[%s] %s", name, line.rstrip("\n"))
        with self._lock:
            stream = self._streams.get(arn)
        if stream is None or not lines:
            return
        from moto.logs.models import logs_backends  # noqa: PLC0415

        group = f"/aws/lambda/{name}"
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line.rstrip("\n")} for line in lines]
        with self._guard(), self._logs_lock:
            with self._lock:
                if arn not in self._streams:  # reset (or deleted) meanwhile
                    return
            backend: Any = logs_backends[account][region]
            if group not in backend.groups:
                backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, events)


def _arn_parts(arn: str) -> tuple[str, str, str, str, str, str]:
    """``arn:aws:lambda:<region>:<account>:function:<name>`` → its six parts (the last the name)."""
    parts = arn.split(":")
    return "arn", parts[1], parts[2], parts[3], parts[4], parts[6] if len(parts) > 6 else ""


def _lambda_backend(account: str, region: str) -> Any:
    from moto.awslambda.models import lambda_backends  # noqa: PLC0415

    return lambda_backends[account][region]


def _check_client_context(value: str) -> str | None:
    if len(value.encode()) > CLIENT_CONTEXT_MAX_BYTES:
        return f"Client context must be at most {CLIENT_CONTEXT_MAX_BYTES} bytes"
    try:
        json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return "Client context must be a valid Base64-encoded JSON object."
    return None


def _query_param(request: HttpRequest, name: str) -> str | None:
    if not request.query_string:
        return None
    from urllib.parse import parse_qs  # noqa: PLC0415

    values = parse_qs(request.query_string.decode("latin-1")).get(name)
    return values[0] if values else None
