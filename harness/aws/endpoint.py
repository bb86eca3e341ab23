"""The embedded AWS endpoint: one loopback port, moto in-process, Lambda and mappings ours."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.autoscaling.activities import Store as ScalingActivities
from harness.aws import stream_patches
from harness.aws.endpoint_app import EndpointApp
from harness.aws.iam_enforcement import ENFORCE_IAM_VARIABLE, IamEnforcer
from harness.aws.moto_app import HttpRequest
from harness.aws.reset import ResetGate, ResetHooks
from harness.aws.routing import ACCOUNT_HEADER

if TYPE_CHECKING:
    from harness.faults.hooks import EndpointFaults
    from harness.lambda_runtime.api import LambdaApi

logger = logging.getLogger("harness.aws.endpoint")

DEFAULT_PORT = 4566
DEFAULT_REGION = "ap-southeast-1"
#: How long a reset waits for the pollers it stopped (each finishes its current call).
RESET_JOIN_S = 10.0


class EndpointError(RuntimeError):
    """The endpoint could not start (port taken, server failed)."""


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
            if self._runtime is not None:  # and the Lambda fork server imports its libraries
                self._runtime.start_fork_server()
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
    ) -> tuple[int, bytes | dict[str, Any]]:
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
        if action == "GetRecords" and not self.iam.enforce:  # the sync path's read, lean
            return self._get_records(body, region, account_id, key)
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

    def _get_records(
        self, body: bytes, region: str, account_id: str | None, access_key: str
    ) -> tuple[int, dict[str, Any]]:
        """A poller's GetRecords without moto's request cycle (stream_patches.get_records_answer),
        behind the reset gate as app.handle; the account as moto's handler would pick it."""
        from moto.iam.models import get_account_id_from  # noqa: PLC0415

        account = (os.environ.get("MOTO_ACCOUNT_ID") or account_id
                   or get_account_id_from(access_key))
        with self.gate.request():
            return stream_patches.get_records_answer(body, region, account)

    def _table_keys(self) -> dict[str, tuple[str, ...]]:
        """The DynamoDB tables of the default account and region, with their key attributes."""
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

        tables = dynamodb_backends["123456789012"][self.region].tables  # moto's default account
        return {
            name: tuple(k for k in (table.hash_key_attr, table.range_key_attr) if k)
            for name, table in list(tables.items())
        }

    def _execution_role_credentials(self) -> Any:
        """Each function's execution role session, from STS AssumeRole here (harness.iam),
        served in-process (harness.aws.local_sts: no boto3 session in the endpoint)."""
        from harness.iam import ExecutionRoleCredentials  # noqa: PLC0415

        def sts() -> Any:
            from harness.aws.local_sts import InProcessSts  # noqa: PLC0415

            def handle(request: HttpRequest) -> Any:
                if self._app is None:
                    raise EndpointError("the endpoint stopped")
                return self._app.handle(request)

            return InProcessSts(handle, host=f"{self.host}:{self.port}", region=self.region)

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


#: The endpoint process's log lines (``python -m harness.aws.endpoint``).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


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
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # The format above shows no caller, thread or process: a record need not look them up (the
    # logging HOWTO's "Optimization": a frame walk, a getpid call and thread names per record;
    # a warm Invoke logs its function's three lines here)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
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
