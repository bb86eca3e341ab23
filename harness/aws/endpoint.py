"""The embedded AWS endpoint: one loopback port, moto in-process, Lambda and mappings ours."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.autoscaling.activities import Store as ScalingActivities
from harness.aws.data_json import data_json
from harness.aws.iam_enforcement import CONTROL_PATH as IAM_CONTROL_PATH
from harness.aws.iam_enforcement import ENFORCE_IAM_VARIABLE, IamEnforcer
from harness.aws.moto_app import HttpRequest, HttpResponse, MotoApp, json_error
from harness.aws.reset import ResetGate, ResetHooks

if TYPE_CHECKING:
    from harness.faults.hooks import EndpointFaults
    from harness.lambda_runtime.api import LambdaApi

logger = logging.getLogger("harness.aws.endpoint")

DEFAULT_PORT = 4566
DEFAULT_REGION = "ap-southeast-1"
ESM_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/event-source-mappings(?:/[^/]*)?/?$")
ESM_TAGS_PATH = re.compile(r"^/2017-03-31/tags/(?P<arn>arn:[^/]+:event-source-mapping:[^/]+)/?$")
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9.-]+)/aws4_request")
DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
PARTIQL_TABLE = re.compile(r'(?i)\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([A-Za-z0-9_.-]+)"?')
HEALTH_PATHS = ("/_localstack/health", "/_harness/health")
RESET_PATH = "/moto-api/reset"
ACCOUNT_HEADER = "x-moto-account-id"  # moto's way to name the account of a request
DATA_PATH = "/moto-api/data.json"
#: How long a reset waits for the pollers it stopped (each finishes its current call).
RESET_JOIN_S = 10.0
# ECS requests are delegated to the stack's scheduler (harness.ecs.api) once it registers here;
# it forwards what moto stores back with ECS_DIRECT_HEADER. POST {"url": ...} / DELETE.
ECS_DELEGATE_PATH = "/_harness/ecs-delegate"
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
ECS_DIRECT_HEADER = "x-harness-ecs-direct"
FAULTS_PATH = "/_harness/faults"  # harness.faults' control API
SERVICES = (
    "dynamodb",
    "dynamodbstreams",
    "iam",
    "sqs",
    "logs",
    "apigateway",
    "ecs",
    "elbv2",
    "lambda",
    "sts",
)


class EndpointError(RuntimeError):
    """The endpoint could not start (port taken, server failed)."""


def signing_scope(request: HttpRequest) -> tuple[str, str, str] | None:
    """(access key id, region, service) from a SigV4 Authorization header, if signed."""
    match = CREDENTIAL.search(request.header("authorization", "") or "")
    return (match.group(1), match.group(2), match.group(3)) if match else None


def written_tables(action: str, body: bytes) -> list[str]:
    """The DynamoDB tables a successful write request changed."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    if action in ("PutItem", "UpdateItem", "DeleteItem"):
        return [str(document.get("TableName", ""))]
    if action == "BatchWriteItem":
        return [str(name) for name in document.get("RequestItems", {})]
    if action == "TransactWriteItems":
        return [
            str(op.get("TableName", ""))
            for entry in document.get("TransactItems", [])
            for op in entry.values()
            if isinstance(op, dict)
        ]
    statements = [document.get("Statement", "")]
    statements += [s.get("Statement", "") for s in document.get("Statements", [])]
    statements += [s.get("Statement", "") for s in document.get("TransactStatements", [])]
    return [m for s in statements for m in PARTIQL_TABLE.findall(str(s))]


def _dynamodb_error(status: int, code: str, message: str) -> HttpResponse:
    return json_error(status, code, message, json_protocol=True)


class EndpointApp:
    """The raw ASGI app: routes Lambda Invoke and mappings to the harness, the rest to moto."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._moto = MotoApp()
        self._moto_pool = ThreadPoolExecutor(8, thread_name_prefix="moto")
        self._invoke_pool = ThreadPoolExecutor(64, thread_name_prefix="invoke")

    def warm_moto(self, backend: str) -> None:
        """Prepare moto's app for ``backend`` before its first request (see moto_warmup)."""
        self._moto.warm(backend)

    def close(self) -> None:
        """Stop the worker pools."""
        self._moto_pool.shutdown(wait=True, cancel_futures=True)
        self._invoke_pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query_string=scope.get("query_string", b""),
            headers=[
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ],
            body=b"".join(chunks),
            server=tuple(scope.get("server") or ("127.0.0.1", 0)),
            client=tuple(scope.get("client") or ("127.0.0.1", 0)),
        )
        loop = asyncio.get_running_loop()
        pool = (
            self._invoke_pool
            if "/functions/" in request.path
            and request.path.rstrip("/").endswith(("/invocations", "/invoke-async"))
            else self._moto_pool
        )
        try:
            response = await loop.run_in_executor(pool, self.handle, request)
        except Exception as exc:  # a bug of ours: still an AWS-shaped answer
            logger.exception("endpoint failed on %s %s", request.method, request.path)
            response = json_error(500, "ServiceException", f"{type(exc).__name__}: {exc}")
        headers = [
            (k.lower().encode("latin-1"), str(v).encode("latin-1"))
            for k, v in response.headers
            if k.lower() != "content-length"
        ]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one request (called on a worker thread)."""
        from harness.lambda_runtime.api import INVOKE_PATH  # noqa: PLC0415

        endpoint = self._endpoint
        scope = signing_scope(request)
        region = scope[1] if scope else endpoint.region
        if request.path in HEALTH_PATHS:
            body = {
                "services": dict.fromkeys(SERVICES, "running"),
                "edition": "harness",
                "version": endpoint.moto_version,
            }
            return HttpResponse(
                200, [("Content-Type", "application/json")], json.dumps(body).encode()
            )
        if request.path == DATA_PATH and request.method == "GET":
            with endpoint.gate.request():
                document = data_json()
            return HttpResponse(200, [("Content-Type", "application/javascript")], document)
        if request.path == RESET_PATH and request.method == "POST":
            failed = endpoint.reset()
            if failed:
                return json_error(
                    500, "ServiceException", "reset hooks failed: " + ", ".join(failed)
                )
            return HttpResponse(
                200, [("Content-Type", "application/json")], b'{"status": "ok"}'
            )
        if request.path.startswith(IAM_CONTROL_PATH):
            return endpoint.iam.control(request.method, request.path, request.body)
        if (match := INVOKE_PATH.match(request.path)) and request.method == "POST":
            api = endpoint.lambda_api
            if api is None:
                return json_error(500, "ServiceException", endpoint.lambda_unavailable)
            with endpoint.gate.request():  # not around the invocation: it may call us back
                account = endpoint.account_for(scope, request)
                # lambda:InvokeFunction on the function's ARN (harness.aws.iam_enforcement)
                refused = endpoint.iam.check(request, scope, region, account)
            if refused is not None:
                return refused
            return api.invoke(request, match.group("name"), match.group("kind"), account, region)
        with endpoint.gate.request():  # a reset waits for it; it waits for a reset
            if endpoint.iam.enforce:  # IAM decides first (harness.aws.iam_enforcement)
                account = endpoint.account_for(scope, request)
                refused = endpoint.iam.check(request, scope, region, account)
                if refused is not None:
                    return refused
            return self._serve(request, scope, region)

    def _serve(
        self, request: HttpRequest, scope: tuple[str, str, str] | None, region: str
    ) -> HttpResponse:
        from harness.lambda_runtime.api import FUNCTIONS_PATH  # noqa: PLC0415

        endpoint = self._endpoint
        if ESM_PATH.match(request.path) or ESM_TAGS_PATH.match(request.path):
            return self._event_source_mappings(request, endpoint.account_for(scope, request), region)
        if request.path.startswith("/_harness/application-autoscaling") or (
            request.header("x-amz-target") or ""
        ).endswith(".DescribeScalingActivities"):
            status, answer = endpoint.scaling_activities.handle(
                request.method, request.path, request.body
            )
            headers = [("Content-Type", "application/x-amz-json-1.1")]
            return HttpResponse(status, headers, json.dumps(answer).encode())
        if request.path == ECS_DELEGATE_PATH:
            return self._set_ecs_delegate(request)
        if (
            endpoint.ecs_delegate
            and (request.header("x-amz-target") or "").startswith(ECS_TARGET_PREFIX)
            and request.header(ECS_DIRECT_HEADER) is None
        ):
            return self._delegate_ecs(endpoint.ecs_delegate, request)
        if request.path.startswith(FAULTS_PATH) and endpoint.faults is not None:
            status, document = endpoint.faults.control(request.method, request.path, request.body)
            return HttpResponse(status, [("Content-Type", "application/json")], document)
        if FUNCTIONS_PATH.match(request.path) and endpoint.lambda_api is not None:
            rejected = endpoint.lambda_api.check_control_plane(request)
            if rejected is not None:
                return rejected
            response = self._moto(request)
            endpoint.lambda_api.after_control_plane(
                request, response, endpoint.account_for(scope, request), region
            )
            return response
        target = request.header("x-amz-target") or ""
        response = (
            self._moto(request)
            if endpoint.faults is None  # harness.faults: throttling errors, write-order watch
            else endpoint.faults.dynamodb.around(
                target, request.body, lambda: self._moto(request), _dynamodb_error
            )
        )
        if response.status != 200 or endpoint.mappings is None:
            return response
        if target.startswith("DynamoDB_"):
            action = target.rsplit(".", 1)[-1]
            if action in DYNAMODB_WRITES:
                for table in dict.fromkeys(written_tables(action, request.body)):
                    endpoint.mappings.notify_write(table)
        elif target.startswith("AmazonSQS.SendMessage") or (
            b"Action=SendMessage" in request.body[:200]
        ):
            endpoint.mappings.notify_send()  # wake the SQS pollers (JSON or query protocol)
        return response

    def _set_ecs_delegate(self, request: HttpRequest) -> HttpResponse:
        """Register (POST {"url"}) or drop (DELETE) the ECS scheduler that answers ECS requests."""
        if request.method == "DELETE":
            self._endpoint.ecs_delegate = None
        else:
            try:
                url = json.loads(request.body or b"{}")["url"]
            except (ValueError, KeyError, TypeError):
                return json_error(400, "ValidationException", 'expected {"url": "http://..."}')
            self._endpoint.ecs_delegate = str(url).rstrip("/")
        return HttpResponse(204, [], b"")

    def _delegate_ecs(self, url: str, request: HttpRequest) -> HttpResponse:
        import httpx  # noqa: PLC0415 - only when a stack runs ECS tasks

        headers = [(k, v) for k, v in request.headers if k not in ("host", "content-length")]
        try:
            answer = httpx.post(url + "/", headers=headers, content=request.body, timeout=60)
        except httpx.HTTPError as exc:
            message = f"the ECS scheduler at {url} did not answer: {exc}"
            return json_error(500, "ServerException", message, json_protocol=True)
        return HttpResponse(
            answer.status_code,
            [("Content-Type", answer.headers.get("content-type", "application/x-amz-json-1.1"))],
            answer.content,
        )

    def _event_source_mappings(
        self, request: HttpRequest, account: str, region: str
    ) -> HttpResponse:
        from urllib.parse import parse_qsl  # noqa: PLC0415

        mappings = self._endpoint.mappings
        if mappings is None:
            return json_error(501, "ServiceException", self._endpoint.mappings_unavailable)
        pairs = parse_qsl(request.query_string.decode("latin-1"))
        if tags := ESM_TAGS_PATH.match(request.path):
            status, document = mappings.handle_tags(
                request.method,
                tags.group("arn"),
                [value for key, value in pairs if key == "tagKeys"],
                request.body,
                region=region,
                account_id=account,
            )
        else:
            status, document = mappings.handle(
                request.method, request.path, dict(pairs), request.body, region=region,
                account_id=account,
            )
        headers = [("Content-Type", "application/json")]
        if status >= 400 and isinstance(document, dict) and "Type" in document:
            headers.append(
                (
                    "x-amzn-ErrorType",
                    str(
                        document.get("__type")
                        or document.get("code")
                        or document.get("Code")
                        or "ServiceException"
                    ),
                )
            )
        body = b"" if status == 204 else json.dumps(document).encode()
        return HttpResponse(status, headers, body)


class Endpoint:
    """One AWS endpoint on loopback: `start()` returns when it answers, `stop()` frees the port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        region: str = DEFAULT_REGION,
        *,
        max_concurrency: int | None = None,  # the runtime's default: AWS's 1,000, machine-capped
        python: str | None = None,
        prewarm: bool = False,
        cache_dir: Path | None = None,
        enforce_iam: bool | None = None,  # None: $HARNESS_ENFORCE_IAM (set by `up --enforce-iam`)
    ) -> None:
        self.host = host
        if enforce_iam is None:
            enforce_iam = os.environ.get(ENFORCE_IAM_VARIABLE, "") not in ("", "0", "false")
        #: IAM access control on every signed request, switchable at /_harness/iam
        self.iam = IamEnforcer(enforce=enforce_iam)
        #: Where botocore-derived lists are kept between runs (default: moto_warmup's).
        self.cache_dir = cache_dir
        #: Load the backends the data plane uses (DynamoDB, IAM, Lambda, SQS, Logs...) in the background at
        #: start: faster provisioning, at the cost of ~90 MB and a slower first call.
        self.prewarm = prewarm
        self.port = port
        self.region = region
        self.moto_version = ""
        self.lambda_api: LambdaApi | None = None
        self.mappings: Any = None
        #: URL of the ECS scheduler that answers ECS requests (harness.ecs.api), once registered
        self.ecs_delegate: str | None = None
        self.faults: EndpointFaults | None = None
        self.lambda_unavailable = "the Lambda runtime (harness.lambda_runtime.runtime) is not available"
        self.mappings_unavailable = (
            "event source mappings are served by "
            "harness.streams.mappings, which is not available"
        )
        self._max_concurrency = max_concurrency
        self._python = python
        self._runtime: Any = None
        self._role_sessions: Any = None  # each function's execution-role session (harness.iam)
        self._app: EndpointApp | None = None
        self._http: Any = None  # harness.ingress.servers.ASGIServer, once started
        self._code_root: Path | None = None
        #: Every request that touches state passes it; a reset closes it (see harness.aws.reset).
        self.gate = ResetGate()
        self._reset_hooks = ResetHooks()
        #: DescribeScalingActivities (moto does not implement it): harness.autoscaling.activities
        self.scaling_activities = ScalingActivities()

    def on_reset(self, hook: Callable[[], None], name: str | None = None) -> Callable[[], None]:
        """Run ``hook`` in every reset, after the endpoint's own state is wiped and before
        requests are let in again; returns a function that unregisters it.

        For parts that keep state beside moto's (faults, metrics...). A hook must not call the
        endpoint over HTTP (requests wait for the reset it is part of); an exception is logged and
        makes the reset answer HTTP 500 naming the hook.
        """
        return self._reset_hooks.add(hook, name)

    def reset(self) -> list[str]:
        """Stop and forget everything: mappings and their pollers, Lambda environments, queued
        Event invocations and their retries, moto's backends (tables and their partition
        indexes with them), then the ``on_reset`` hooks. Requests that arrive meanwhile wait.
        Returns the names of the hooks that failed (empty when all is well).
        """
        started = time.perf_counter()
        pollers: list[Any] = []
        with self.gate.closed():
            if self.mappings is not None:
                pollers = self.mappings.reset()
            if self._runtime is not None:
                self._runtime.reset()
            if self.lambda_api is not None:
                self.lambda_api.reset()
            from moto.moto_api._internal.models import moto_api_backend  # noqa: PLC0415

            moto_api_backend.reset()
            self.scaling_activities = ScalingActivities()
            if self.faults is not None:  # faults act on what a reset forgets: they go too
                self.faults.registry.clear()
            self.iam.forget()  # the switch and the record stay; identities are gone
            failed = self._reset_hooks.run()
        deadline = time.monotonic() + RESET_JOIN_S
        for poller in pollers:  # outside the gate: a poller may be waiting on it
            poller.join(max(0.0, deadline - time.monotonic()))
            if poller.is_alive():
                logger.warning("reset: a stopped poller still runs after %.0f s", RESET_JOIN_S)
        logger.info("reset in %.1f ms", (time.perf_counter() - started) * 1000)
        return failed

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. http://127.0.0.1:4566."""
        return f"http://{self.host}:{self.port}"

    def account_for(
        self, scope: tuple[str, str, str] | None, request: HttpRequest | None = None
    ) -> str:
        """The account moto files a request under: its ``x-moto-account-id`` header, else the
        account of its access key (moto's order of precedence)."""
        from moto.iam.models import get_account_id_from  # noqa: PLC0415

        header = request.header(ACCOUNT_HEADER) if request is not None else None
        if header:
            return header
        return get_account_id_from(scope[0]) if scope else "123456789012"

    def start(self) -> Endpoint:
        """Bind, start serving in a background thread, and return once ready."""
        from harness.ingress.servers import ASGIServer, ServerStartError  # noqa: PLC0415

        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        from harness.aws import patches as moto_patches  # noqa: PLC0415

        self.moto_version = moto_patches.apply()
        from harness.aws import warmup as moto_warmup  # noqa: PLC0415

        moto_warmup.memoize_region_listing(self.cache_dir)
        moto_warmup.share_moto_loader()  # one botocore loader for moto's models (~0.5 CPU-s)
        self._http = ASGIServer(
            None,
            host=self.host,
            port=self.port,
            name="endpoint",
            ready_timeout_s=15.0,
            graceful_shutdown_s=5.0,
            # no lifespan; httptools and uvloop when installed (CPU per Invoke 5.0 -> 3.2 ms,
            # bench/bench_api.py), else h11 and asyncio; clients keep connections
            uvicorn_options={
                "lifespan": "off",
                "loop": "auto",
                "http": "auto",
                "timeout_keep_alive": 75,
            },
        )
        try:
            self.port = self._http.bind()  # the Lambda runtime needs the URL before we serve
        except ServerStartError as exc:
            reason = getattr(exc.__cause__, "strerror", None) or str(exc)
            raise EndpointError(
                f"cannot listen on {self.host}:{self.port} ({reason}); another endpoint "
                "or LocalStack is probably running there: stop it or choose another --port "
                "(0 picks a free one)"
            ) from exc
        self._code_root = Path(tempfile.mkdtemp(prefix="harness-lambda-"))
        self._start_lambda()
        self._app = self._http.app = EndpointApp(self)
        try:
            self._http.start()
        except ServerStartError as exc:
            self.stop()
            raise EndpointError(f"the endpoint on {self.url} did not start: {exc}") from exc
        if self.mappings is not None:
            self.mappings.start()
        if self.prewarm:  # moto's backends and apps load in the background while we serve
            moto_warmup.prewarm(warm_app=self._app.warm_moto)
        logger.info("AWS endpoint ready on %s (moto %s)", self.url, self.moto_version)
        return self

    def _start_lambda(self) -> None:
        try:
            from harness.lambda_runtime.api import LambdaApi  # noqa: PLC0415
            from harness.lambda_runtime.runtime import LambdaRuntime  # noqa: PLC0415
        except ImportError as exc:
            self.lambda_unavailable += f" ({exc})"
            logger.error("Lambda API disabled: %s", self.lambda_unavailable)
            return
        assert self._code_root is not None
        self._role_sessions = self._execution_role_credentials()
        self._runtime = LambdaRuntime(
            endpoint_url=self.url,
            region=self.region,
            log_sink=self._log_sink,
            max_concurrency=self._max_concurrency,
            python=self._python,
            role_credentials=self._role_sessions,
        )
        self.lambda_api = LambdaApi(self._runtime, self._code_root, guard=self.gate.request)
        try:
            from harness.streams.mappings import EventSourceMappings  # noqa: PLC0415
        except ImportError as exc:
            self.mappings_unavailable += f" ({exc})"
            logger.warning("event source mappings disabled: %s", self.mappings_unavailable)
            return
        self.mappings = EventSourceMappings(
            endpoint_url=self.url,
            region=self.region,
            account_id="123456789012",
            runtime=self._runtime,
            streams=self._streams_request,
        )
        from harness.faults.hooks import EndpointFaults  # noqa: PLC0415

        self.faults = EndpointFaults.install(self._runtime, self.mappings, self._table_keys)

    def _streams_request(
        self, action: str, body: bytes, region: str, account_id: str | None, function: str | None
    ) -> tuple[int, bytes]:
        """A poller's DynamoDB Streams request, served by the same handler as an HTTP one
        (harness.streams.clients.DirectStreamsClient). Lambda reads a stream with the function's
        execution role ("Lambda needs the following permissions to manage resources related to
        your DynamoDB stream. Add them to your function's execution role", the Lambda developer
        guide): signed with that role's session, so IAM enforcement decides it; without a role,
        with the harness's credentials."""
        app = self._app
        if app is None:
            return 503, b'{"__type": "ServiceUnavailable", "message": "the endpoint stopped"}'
        key, token = os.environ.get("AWS_ACCESS_KEY_ID", "test"), None
        config = self._runtime.config(function) if function and self._runtime else None
        if config is not None and config.role:
            session = self._role_sessions(config.role, config.name)
            key, token = session["AWS_ACCESS_KEY_ID"], session["AWS_SESSION_TOKEN"]
        headers = [
            ("host", f"{self.host}:{self.port}"),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", f"DynamoDBStreams_20120810.{action}"),
            (
                "authorization",
                f"AWS4-HMAC-SHA256 Credential={key}/20000101/{region}/dynamodb/aws4_request, "
                "SignedHeaders=host;x-amz-target, Signature=0",
            ),
        ]
        if token:
            headers.append(("x-amz-security-token", token))
        if account_id:
            headers.append((ACCOUNT_HEADER, account_id))
        response = app.handle(HttpRequest("POST", "/", b"/", b"", headers, body))
        return response.status, response.body

    def _table_keys(self) -> dict[str, tuple[str, ...]]:
        """The DynamoDB tables of the default account and region, with their key attributes."""
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

        tables = dynamodb_backends["123456789012"][self.region].tables  # moto's default account
        return {
            name: tuple(k for k in (table.hash_key_attr, table.range_key_attr) if k)
            for name, table in list(tables.items())
        }

    def _execution_role_credentials(self) -> Any:
        """Each function's execution role session, from STS AssumeRole here (harness.iam)."""
        from harness.iam import ExecutionRoleCredentials  # noqa: PLC0415

        def sts() -> Any:
            import boto3  # noqa: PLC0415

            return boto3.client(
                "sts",
                endpoint_url=self.url,
                region_name=self.region,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )

        return ExecutionRoleCredentials(sts)

    def _log_sink(self, name: str, lines: list[str]) -> None:
        if self.lambda_api is not None:
            self.lambda_api.log_sink(name, lines)

    def stop(self) -> None:
        """Stop pollers, the server and the Lambda workers; free the port."""
        if self.mappings is not None:
            self.mappings.stop()
        if self._http is not None:
            self._http.stop()
            self._http = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        if self._app is not None:
            self._app.close()
            self._app = None
        if self._code_root is not None:
            shutil.rmtree(self._code_root, ignore_errors=True)
            self._code_root = None

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.aws.endpoint",
        description="Embedded AWS endpoint (moto + harness Lambda).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to bind (default {DEFAULT_PORT}; 0 = any free port)",
    )
    parser.add_argument(
        "--region",
        default=DEFAULT_REGION,
        help=f"region for unsigned requests (default {DEFAULT_REGION})",
    )
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="load moto's DynamoDB, IAM, Lambda, SQS, Logs backends in the background at start",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where region lists derived from botocore are kept between runs "
        "(default $HARNESS_CACHE_DIR, else ~/.cache/query-harness)",
    )
    parser.add_argument(
        "--lambda-concurrency",
        type=int,
        default=None,
        help="the account's Lambda concurrency limit (default $HARNESS_LAMBDA_CONCURRENCY, else "
        "AWS's 1000; lowered to what the machine can hold)",
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="decide every signed request with IAM (the caller's policies, the resource's ARN); "
        "the harness's own keys (HARNESS_ADMIN_ACCESS_KEYS, default 'test') are administrators",
    )
    parser.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes: a parent that holds it open and dies (even by "
        "SIGKILL) takes the endpoint with it",
    )
    args = parser.parse_args(argv)
    if args.lambda_concurrency is not None and args.lambda_concurrency < 1:
        parser.error("--lambda-concurrency must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    if args.stop_on_stdin_eof:
        threading.Thread(
            target=_stop_on_eof, args=(stopping,), name="stdin-watch", daemon=True
        ).start()
    endpoint = Endpoint(
        args.host,
        args.port,
        args.region,
        prewarm=args.prewarm,
        cache_dir=args.cache_dir,
        max_concurrency=args.lambda_concurrency,
        enforce_iam=args.enforce_iam or None,
    )
    try:
        endpoint.start()
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(endpoint.url, flush=True)
    from harness.aws.heap import freeze_after  # noqa: PLC0415

    freeze_after(("moto-warmup",))  # full collections run again in a long-lived endpoint
    try:
        stopping.wait()
    finally:
        endpoint.stop()
    # Everything is stopped: skip the interpreter's slow teardown of moto's state (~1.5 s of GC).
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


def _stop_on_eof(stopping: threading.Event) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    logger.info("standard input closed (the parent is gone): stopping")
    stopping.set()


if __name__ == "__main__":
    sys.exit(main())
