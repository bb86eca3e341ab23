"""The Internal API Gateway: serves one stage of an API definition, as API Gateway would."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from harness.ingress.api_definition import ApiDefinition, GatewayDefinitionError, Route
from harness.ingress.servers import (
    HOP_BY_HOP,
    ASGIApp,
    ASGIServer,
    Receive,
    Scope,
    Send,
    read_body,
    send_json,
)
from harness.ingress.upstream import UpstreamError, UpstreamPool, UpstreamResponse

__all__ = ["ApiDefinition", "Gateway", "GatewayDefinitionError"]

access_logger = logging.getLogger("harness.ingress.gateway.access")
MAX_BODY_BYTES = 10 * 1024 * 1024
#: a client's X-Request-Id is passed on and echoed only if it is 1-200 printable ASCII characters
#: (the service's own rule); anything else (8,000 characters, control bytes) is replaced by the
#: gateway's request id
ACCEPTABLE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")
#: API Gateway's longest integration timeout; a request body still incomplete after it is cut off
CLIENT_BODY_TIMEOUT_S = 29.0
REMAPPED = frozenset({"date", "server", "authorization", "www-authenticate"})
#: resource-policy decisions kept per (resource, source address); the policy and the VPC ranges
#: are fixed for a gateway's life, so a decision is a pure function of the pair (cleared when full)
POLICY_DECISIONS_MAX = 4096


class Gateway:
    """API Gateway for one stage of ``api_definition``, forwarding to ``upstream_url``."""

    def __init__(
        self,
        api_definition: dict[str, Any] | Path | str | ApiDefinition,
        upstream_url: str,
        *,
        stage: str = "v1",
        allowed_source_cidrs: Iterable[str] = ("127.0.0.0/8", "::1/128"),
        access_log: Path | Callable[[dict[str, Any]], None] | None = None,
        region: str = "ap-southeast-1",
        account_id: str = "000000000000",
        api_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_body_timeout_s: float = CLIENT_BODY_TIMEOUT_S,
        upstream_app: ASGIApp | None = None,
        loop_host: ASGIServer | None = None,
    ) -> None:
        self.api = (
            api_definition
            if isinstance(api_definition, ApiDefinition)
            else ApiDefinition.load(api_definition)
        )
        self.upstream_url = upstream_url.rstrip("/")
        self.stage = stage
        self.vpc_cidrs = [ipaddress.ip_network(c, strict=False) for c in allowed_source_cidrs]
        self._decisions: dict[tuple[str, str], bool] = {}
        self.region, self.account_id = region, account_id
        self.api_id = api_id or hashlib.sha1(self.api.title.encode()).hexdigest()[:10]
        self._access_log = access_log
        self._log_file: IO[str] | None = None  # opened once: not per request (~6% of the CPU)
        self.client_body_timeout_s = client_body_timeout_s
        self._client: UpstreamPool | None = None
        #: the ASGI app behind ``upstream_url``, called in-process when both are served on one
        #: event loop (``loop_host``: the upstream's server); see :meth:`_call_upstream_app`
        self._upstream_app = upstream_app
        self._upstream_address = _address(self.upstream_url)
        self.server = ASGIServer(self, host=host, port=port, name="gateway", loop_host=loop_host)

    @property
    def url(self) -> str:
        """Base URL (without the stage)."""
        return self.server.url

    @property
    def stage_url(self) -> str:
        """Invoke URL of the stage, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"{self.server.url}/{self.stage}"

    def start(self) -> Gateway:
        """Serve the API."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stage_path(self, full_path: str) -> str | None:
        """The resource path of a request under this stage, or None outside it."""
        prefix = f"/{self.stage}"
        if full_path in (prefix, prefix + "/"):
            return "/"
        return full_path[len(prefix) :] if full_path.startswith(prefix + "/") else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                # the route's integration timeout bounds each request (asyncio.timeout below)
                self._client = UpstreamPool(connect_timeout_s=CLIENT_BODY_TIMEOUT_S)
                await send({"type": "lifespan.startup.complete"})
            if self._client is not None:
                await self._client.aclose()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            started = time.perf_counter()
            log = await self._handle(scope, receive, send)
            log["latencyMs"] = round((time.perf_counter() - started) * 1000, 3)
            self._write_log(log)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> dict[str, Any]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = str(uuid.uuid4())
        ids = {
            "x-request-id": given_id
            if ACCEPTABLE_REQUEST_ID.fullmatch(given_id := headers.get("x-request-id", "").strip())
            else request_id,
            "x-amzn-trace-id": headers.get("x-amzn-trace-id") or _trace_id(),
        }
        ip = (scope.get("client") or ("",))[0]
        method, path = scope["method"], self.stage_path(scope["path"])
        log: dict[str, Any] = {
            "requestId": request_id,
            "ip": ip,
            "requestTime": datetime.now(UTC).isoformat(),
            "method": method,
            "path": scope["path"],
            "resourcePath": None,
            "status": None,
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "responseLength": 0,
            "latencyMs": None,
            "integrationLatencyMs": None,
            "xRequestId": ids["x-request-id"],
            "traceId": ids["x-amzn-trace-id"],
            "errorType": None,
        }
        extra = [
            (b"x-amzn-requestid", request_id.encode()),
            (b"x-request-id", ids["x-request-id"].encode()),
        ]
        found = None if path is None else self.api.find(method, path)
        if path is None or found is None:
            log["errorType"] = "MissingAuthenticationTokenException"
            body: dict[str, str] = {"message": "Missing Authentication Token"}
        else:
            route, params = found
            log["resourcePath"] = route.resource
            resource = f"{self.stage}/{method}/{path.lstrip('/')}"
            if self._allowed(resource, ip):
                await self._integrate(scope, receive, send, route, params, ids, extra, log)
                return log
            arn = f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{resource}"
            log["errorType"] = "AccessDeniedException"
            body = {
                "Message": "User: anonymous is not authorized to perform: "
                f"execute-api:Invoke on resource: {arn}"
            }
        extra.append((b"x-amzn-errortype", str(log["errorType"]).encode()))
        log["status"] = 403
        log["responseLength"] = await send_json(send, 403, body, extra)
        return log

    async def _integrate(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        params: dict[str, str],
        ids: dict[str, str],
        extra: list[tuple[bytes, bytes]],
        log: dict[str, Any],
    ) -> None:
        assert self._client is not None, "Gateway must be served (start()) to forward"
        try:
            async with asyncio.timeout(self.client_body_timeout_s):  # no task, as wait_for's
                body = await read_body(receive)
        except TimeoutError:  # a client that never finishes its body does not hold a connection
            log["status"], log["errorType"] = 408, "ClientBodyTimeout"
            log["responseLength"] = await send_json(
                send, 408, {"message": "Request Timeout"}, extra
            )
            return
        if len(body) > MAX_BODY_BYTES:
            log["status"] = 413
            log["responseLength"] = await send_json(
                send, 413, {"message": "Request Too Long"}, extra
            )
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = route.upstream_path(params) + (f"?{query}" if query else "")
        method = scope["method"] if route.integration_method == "ANY" else route.integration_method
        headers = _upstream_headers(scope, ids)
        began = time.perf_counter()
        try:
            async with asyncio.timeout(route.timeout_ms / 1000):
                if self._upstream_app is not None:
                    response = await self._call_upstream_app(scope, method, target, headers, body)
                else:
                    response = await self._client.request(
                        method, self.upstream_url, target, headers, body
                    )
            status, out_headers, content = response.status, response.headers, response.body
        except TimeoutError:
            status, out_headers = 504, []
            content = json.dumps({"message": "Endpoint request timed out"}).encode()
            log["errorType"] = "IntegrationTimeout"
        except UpstreamError as exc:
            status, out_headers = 500, []
            content = json.dumps({"message": "Internal server error"}).encode()
            log["errorType"] = f"IntegrationFailure: {type(exc).__name__}: {exc}"
        log["integrationLatencyMs"] = round((time.perf_counter() - began) * 1000, 3)
        if not out_headers:
            out_headers = [(b"content-type", b"application/json")]
        response_headers = _response_headers(out_headers)
        response_headers += [
            *extra,
            (b"x-amzn-trace-id", ids["x-amzn-trace-id"].encode()),
            (b"content-length", str(len(content)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
        log["status"], log["responseLength"] = status, len(content)

    async def _call_upstream_app(
        self,
        scope: Scope,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> UpstreamResponse:
        """The request the gateway would send to ``upstream_url``, given to the upstream's ASGI
        app on this event loop: the scope its server would build from those bytes (the Host and
        Content-Length headers the HTTP client adds, the gateway's address as the client), the
        answer gathered whole with the Date header its server would add. A failure in the app
        is an integration failure, as a connection the app's server dropped would be."""
        assert self._upstream_app is not None
        path, _, query = target.partition("?")
        host, port = self._upstream_address
        upstream_scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [
                (b"host", f"{host}:{port}".encode("latin-1")),
                *headers,
                (b"content-length", str(len(body)).encode()),
            ],
            "client": (self.server.host, 0),
            "server": (host, port),
            "state": {},
        }
        sent = False
        disconnected = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        status: int | None = None
        out_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, out_headers
            if message["type"] == "http.response.start":
                status, out_headers = int(message["status"]), list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self._upstream_app(upstream_scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - its server would have dropped the connection
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            disconnected.set()
        if status is None:
            raise UpstreamError("the upstream app sent no response")
        if not any(name.lower() == b"date" for name, _ in out_headers):
            out_headers.append((b"date", _http_date()))
        return UpstreamResponse(status, out_headers, b"".join(chunks))

    def _allowed(self, resource: str, ip: str) -> bool:
        """The resource policy's decision for a caller at ``ip`` (IAM evaluation, kept per pair:
        evaluating the statements' wildcards and conditions was ~20 us of every request)."""
        policy = self.api.policy
        if policy is None:
            return True
        key = (resource, ip)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= POLICY_DECISIONS_MAX:
                self._decisions.clear()
            decision = self._decisions[key] = policy.allows(resource, ip, self.vpc_cidrs)
        return decision

    def _write_log(self, record: dict[str, Any]) -> None:
        if callable(self._access_log):  # the callable gets the record, not a JSON line
            self._access_log(record)
            return
        line = json.dumps(record, separators=(",", ":"))
        if self._access_log is not None:
            if self._log_file is None:  # line-buffered: each record is in the file at once
                self._log_file = Path(self._access_log).open("a", encoding="utf-8", buffering=1)
            self._log_file.write(line + "\n")
        else:
            access_logger.info(line)


def _upstream_headers(scope: Scope, ids: dict[str, str]) -> list[tuple[bytes, bytes]]:
    skip = HOP_BY_HOP | {"host", "content-length", "x-forwarded-for", *ids}
    forwarded = [v for k, v in scope["headers"] if k.lower() == b"x-forwarded-for"]
    client_ip = (scope.get("client") or ("",))[0].encode()
    headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in skip]
    headers += [(k.encode(), v.encode()) for k, v in ids.items()]
    headers.append((b"x-forwarded-for", b", ".join([*forwarded, client_ip])))
    return headers


def _response_headers(upstream: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Integration response headers as API Gateway returns them (Date, Server remapped)."""
    dropped = HOP_BY_HOP | {"content-length", "x-request-id", "x-amzn-requestid"}
    headers = []
    for name, value in upstream:
        lowered = name.decode("latin-1").lower()
        if lowered in REMAPPED:
            headers.append((b"x-amzn-remapped-" + lowered.encode(), value))
        elif lowered not in dropped:
            headers.append((name, value))
    return headers


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The HTTP Date header's value now, made once a second (as uvicorn does)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


def _address(url: str) -> tuple[str, int]:
    """Host and port of an ``http://`` URL (80 when none is given)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 80


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
