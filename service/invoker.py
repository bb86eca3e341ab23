"""Calling the query Lambda: the `QueryInvoker` protocol and its boto3 implementation."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Literal, Protocol, TypedDict

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from pydantic import ValidationError

from service.errors import (
    InvalidLambdaResult,
    InvalidNextToken,
    LambdaFunctionError,
    LambdaInvokeError,
    LambdaRejectedRequest,
    LambdaTimeout,
    LambdaUnavailable,
    QueryError,
)
from service.models import QueryResponse
from service.settings import Settings

logger = logging.getLogger("service.invoker")

#: Invokes run on the query routes' threads (``service.routes.query._INVOKE_THREADS``, this
#: many), each holding one Invoke at a time; botocore keeps only 10 connections by default and
#: opens (then discards) a new one for every call beyond that, so a burst paid a TCP connect
#: per extra call.
MAX_POOL_CONNECTIONS = 40

QueryType = Literal["user", "marketing", "fail"]

# Invoke errors that say "not now" rather than "never": answered with 503.
_UNAVAILABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ResourceNotFoundException",
        "ResourceNotReadyException",
        "ResourceConflictException",
        "ServiceException",
        "EC2ThrottledException",
        "EFSMountConnectivityException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
    }
)


class QueryLambdaRequest(TypedDict):
    """The direct-invocation payload of the query Lambda."""

    query_type: QueryType
    id: str
    limit: int
    next_token: str | None


class QueryInvoker(Protocol):
    """Runs one query; raises a `QueryError` subclass when it cannot be answered."""

    def invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        """Return the page of records for `request`, tagging the call with `request_id`."""
        ...


def parse_query_result(result: object) -> QueryResponse:
    """Turn the query Lambda's result document into a `QueryResponse` or a `QueryError`."""
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        raise InvalidLambdaResult("the query Lambda returned no query result")
    if result["ok"]:
        page = {key: value for key, value in result.items() if key != "ok"}
        if isinstance(page.get("records"), list):
            # A query Lambda from before V3 sends no ap_id: that is null, never an error.
            page["records"] = [_with_ap_id(record) for record in page["records"]]
        try:
            return QueryResponse.model_validate(page)
        except ValidationError as exc:
            raise InvalidLambdaResult(
                f"the query Lambda returned a malformed result ({exc.error_count()} errors)"
            ) from exc
    error = result.get("error")
    error = error if isinstance(error, dict) else {}
    code, message = error.get("code"), str(error.get("message") or "no message")
    if code == "InvalidNextToken":
        raise InvalidNextToken(
            f"next_token is not valid for this query: {message}", field="next_token"
        )
    field = error.get("field")
    raise LambdaRejectedRequest(
        f"the query Lambda rejected the request ({code}): {message}",
        field=field if isinstance(field, str) else None,
    )


def _with_ap_id(record: object) -> object:
    if isinstance(record, dict) and "ap_id" not in record:
        return {**record, "ap_id": None}
    return record


def client_context(request_id: str) -> str:
    """The base64 JSON ClientContext carrying the request id to the Lambda."""
    document = json.dumps({"custom": {"request_id": request_id}}, separators=(",", ":"))
    return base64.b64encode(document.encode("utf-8")).decode("ascii")


class LambdaInvoker:
    """A `QueryInvoker` that calls the query Lambda with boto3 `lambda.invoke` (RequestResponse)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self.function_name = function_name

    @classmethod
    def from_settings(cls, settings: Settings) -> LambdaInvoker:
        """Build the boto3 client with the settings' timeouts and standard-mode retries."""
        config = Config(
            region_name=settings.aws_region,
            connect_timeout=settings.lambda_connect_timeout,
            read_timeout=settings.lambda_read_timeout,
            # botocore: `total_max_attempts` counts the first try, `max_attempts` does not.
            retries={"mode": "standard", "total_max_attempts": settings.lambda_max_attempts},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # The parameters are built here (the function name from the settings, the payload
            # from a validated request): botocore's client-side validation of them (a
            # documented Config option) was ~90 us CPU of each Invoke; the Lambda service
            # still validates every request and answers a 4xx that maps as before.
            parameter_validation=False,
        )
        return cls(boto3.client("lambda", config=config), settings.query_lambda_name)

    def invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        """Invoke the function and map every outcome onto a result or a `QueryError`."""
        try:
            return self._invoke(request, request_id)
        except QueryError as exc:
            logger.log(
                logging.INFO if exc.status_code < 500 else logging.WARNING,
                "query Lambda invoke failed",
                extra={
                    "request_id": request_id,
                    "function_name": self.function_name,
                    "query_type": request["query_type"],
                    "error_code": exc.code,
                    "status": exc.status_code,
                    "error": exc.message,
                    "detail": exc.detail,
                    "cause": repr(exc.__cause__) if exc.__cause__ else None,
                },
            )
            raise

    def _invoke(self, request: QueryLambdaRequest, request_id: str) -> QueryResponse:
        try:
            response = self._client.invoke(
                FunctionName=self.function_name,
                InvocationType="RequestResponse",
                ClientContext=client_context(request_id),
                Payload=json.dumps(request).encode("utf-8"),
            )
            raw = response["Payload"].read()
        except ReadTimeoutError as exc:
            raise LambdaTimeout("the query Lambda did not answer in time") from exc
        except ClientError as exc:
            raise _client_error(exc) from exc
        except BotoCoreError as exc:
            raise LambdaUnavailable(f"the query Lambda could not be reached: {exc}") from exc
        if response.get("FunctionError"):
            raise _function_error(raw)
        try:
            result = json.loads(raw)
        except ValueError as exc:
            raise InvalidLambdaResult("the query Lambda returned non-JSON") from exc
        return parse_query_result(result)


def _client_error(exc: ClientError) -> QueryError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = f"Invoke failed with {code}: {error.get('Message', '')}".rstrip(": ")
    if code in _UNAVAILABLE_CODES or status == 429 or status >= 500:
        return LambdaUnavailable(message)
    return LambdaInvokeError(message)


def _function_error(raw: bytes) -> QueryError:
    try:
        document = json.loads(raw)
    except ValueError:
        document = {}
    document = document if isinstance(document, dict) else {}
    error_type = str(document.get("errorType") or "Unhandled")
    error_message = str(document.get("errorMessage") or "")
    if error_type == "Sandbox.Timedout" or "Task timed out" in error_message:
        return LambdaTimeout("the query Lambda timed out", detail=error_message)
    return LambdaFunctionError(
        f"the query Lambda failed with {error_type}", detail=error_message or None
    )
