"""The endpoint's ASGI app: reads each request, routes Lambda Invoke, event-source mappings, the
harness's control paths and ECS delegation to the harness, everything else to moto (in-process),
on worker pools so moto and invocations never block the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.aws.data_json import data_json
from harness.aws.iam_enforcement import CONTROL_PATH as IAM_CONTROL_PATH
from harness.aws.moto_app import HttpRequest, HttpResponse, MotoApp, json_error
from harness.aws.patches import DYNAMODB_LOCK
from harness.aws.routing import (
    DATA_PATH,
    DYNAMODB_WRITES,
    ECS_DELEGATE_PATH,
    ECS_DIRECT_HEADER,
    ECS_TARGET_PREFIX,
    ESM_PATH,
    ESM_TAGS_PATH,
    FAULTS_PATH,
    HEALTH_PATHS,
    RESET_PATH,
    SERVICES,
    signing_scope,
    written_tables,
)

if TYPE_CHECKING:
    from harness.aws.endpoint import Endpoint

logger = logging.getLogger("harness.aws.endpoint")  # the name it logged under before the split


#: DynamoDB reads the event loop serves itself when moto's lock is free (_read_on_loop): each
#: reads one partition (base table or index), or one item.
LOOP_READS = frozenset({"DynamoDB_20120810.Query", "DynamoDB_20120810.GetItem"})


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
        invoke = "/functions/" in request.path and request.path.rstrip("/").endswith(
            ("/invocations", "/invoke-async")
        )
        try:
            response = await self._invoke_warm(request) if invoke else self._read_on_loop(request)
            if response is None:
                pool = self._invoke_pool if invoke else self._moto_pool
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

    def _read_on_loop(self, request: HttpRequest) -> HttpResponse | None:
        """A DynamoDB Query or GetItem served on the event loop when nothing would make it wait:
        moto's lock is free (taken without waiting, held through the call as moto holds it on a
        thread) and no reset runs. It saves the hop to a moto thread and back (~170 us CPU of a
        Query); meanwhile the loop serves nothing else. None: a thread serves it (the lock or
        the reset gate busy, IAM enforcement on, a request moto's dispatcher must route)."""
        endpoint = self._endpoint
        if (
            request.header("x-amz-target") not in LOOP_READS
            or endpoint.iam.enforce
            or not self._moto.serves_directly(request)
            or not DYNAMODB_LOCK.acquire(blocking=False)
        ):
            return None
        try:
            with endpoint.gate.request_nowait() as inside:
                return self.handle(request) if inside else None
        finally:
            DYNAMODB_LOCK.release()

    async def _invoke_warm(self, request: HttpRequest) -> HttpResponse | None:
        """A synchronous Invoke served on the event loop when a warm environment is idle: the
        checks of handle() without waiting (the reset gate, moto's function metadata), then the
        invocation with the loop waiting on the environment's pipe (no hop to a worker thread
        and back). None: serve it with handle() on a thread (a reset running, IAM enforcement
        on, a function not registered yet, a cold start, Event/DryRun, a live fault)."""
        from harness.lambda_runtime.api import INVOKE_PATH  # noqa: PLC0415

        endpoint = self._endpoint
        api = endpoint.lambda_api
        match = INVOKE_PATH.match(request.path)
        if api is None or match is None or request.method != "POST" or endpoint.iam.enforce:
            return None
        scope = signing_scope(request)
        region = scope[1] if scope else endpoint.region
        with endpoint.gate.request_nowait() as inside:  # held for the look-up only, as handle()
            if not inside:
                return None
            account = endpoint.account_for(scope, request)
            call = api.prepare(
                request, match.group("name"), match.group("kind"), account, region, register=False
            )
        if call is None or isinstance(call, HttpResponse):
            return call
        return await api.invoke_warm(request, call)

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
