"""POST /query/user, /query/marketing and /query/fail: pages of notification records."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from service.error_handlers import request_id_of
from service.invoker import MAX_POOL_CONNECTIONS, QueryInvoker, QueryLambdaRequest, QueryType
from service.models import (
    ErrorResponse,
    FailQueryRequest,
    MarketingQueryRequest,
    QueryResponse,
    UserQueryRequest,
)

REQUEST_ID_RESPONSE_HEADER: dict[str, Any] = {
    "X-Request-Id": {
        "description": "Request id: X-Request-Id or X-Amzn-Trace-Id of the request, or new.",
        "schema": {"type": "string"},
    }
}


def _error(description: str) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "headers": REQUEST_ID_RESPONSE_HEADER,
    }


QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A page of records.", "headers": REQUEST_ID_RESPONSE_HEADER},
    400: _error("The next_token does not belong to this query."),
    422: _error("Invalid request: the errors name each field and say why."),
    502: _error("The query Lambda failed or answered with something unusable."),
    503: _error("The query Lambda is throttled or unreachable."),
    504: _error("The query Lambda did not answer in time."),
}

router = APIRouter(tags=["query"], responses=QUERY_RESPONSES)


QueryRequest = UserQueryRequest | MarketingQueryRequest | FailQueryRequest
_Route = TypeVar("_Route", bound=Callable[..., Awaitable[Response]])

#: The threads the blocking Invokes run on: as many as the Lambda client keeps connections.
#: A plain executor, not anyio's run_in_threadpool: its limiter, cancel scope and checkpoints
#: cost ~50 us CPU more per request (a hop measured at 16 concurrent: ~78 vs ~24 us).
#: Threads start on first use, so a zygote that imports this module and forks has none.
_INVOKE_THREADS = ThreadPoolExecutor(MAX_POOL_CONNECTIONS, thread_name_prefix="invoke")


def _lambda_request(query_type: QueryType, id_: str, body: QueryRequest) -> QueryLambdaRequest:
    return {"query_type": query_type, "id": id_, "limit": body.limit, "next_token": body.next_token}


async def _invoke(
    http_request: Request, query_type: QueryType, id_: str, body: QueryRequest
) -> Response:
    """The blocking Invoke in a worker thread; the rest stays on the event loop.

    The routes are async on purpose: a sync FastAPI route costs two thread hops per request
    (the endpoint, then the response validation), this one hop. The thread runs in a copy of
    this context, so its log lines carry the request id. The invoker (``create_app`` puts it on
    the app's state) and the request id (the request-context middleware's) are read from the
    request rather than through two ``Depends``: FastAPI solving them cost ~30-60 us a request.
    The answer is the invoker's `QueryResponse` (validated there) serialised once, as the
    routes' ``response_model``, which the OpenAPI document still states; FastAPI would validate
    it again and serialise it through ``jsonable_encoder`` and ``json.dumps``.
    """
    invoker: QueryInvoker = http_request.app.state.invoker
    request_id = request_id_of(http_request)
    request = _lambda_request(query_type, id_, body)
    context = contextvars.copy_context()
    result = await asyncio.get_running_loop().run_in_executor(
        _INVOKE_THREADS, context.run, invoker.invoke, request, request_id
    )
    return Response(result.model_dump_json(), media_type="application/json")


def _query_route(path: str, name: str, summary: str) -> Callable[[_Route], _Route]:
    """POST ``path`` answering a `QueryResponse` (the OpenAPI document says so; the route
    returns it already serialised)."""
    return router.post(path, name=name, summary=summary, response_model=QueryResponse)


@_query_route("/query/user", "queryUser", "A user's records, newest first")
async def query_user(body: UserQueryRequest, request: Request) -> Response:
    """Return the notification records of `user_id`, newest first."""
    return await _invoke(request, "user", body.user_id, body)


@_query_route("/query/marketing", "queryMarketing", "A campaign's records")
async def query_marketing(body: MarketingQueryRequest, request: Request) -> Response:
    """Return the notification records of the campaign `marketing_id`."""
    return await _invoke(request, "marketing", body.marketing_id, body)


@_query_route("/query/fail", "queryFail", "A transaction's FAILED records")
async def query_fail(body: FailQueryRequest, request: Request) -> Response:
    """Return the FAILED notification records of `transaction_id`."""
    return await _invoke(request, "fail", body.transaction_id, body)
