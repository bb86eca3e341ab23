"""query-lambda's entry point: run a user, marketing or fail query and return one page."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer

from lambdas.dynamodb_client import dynamodb_client, notification_table_name
from lambdas.query.next_token import InvalidNextTokenError, decode_next_token, encode_next_token
from lambdas.query.request import InvalidRequestError, QueryRequest, parse_request
from lambdas.records import QueryRecord

__all__ = [
    "FAIL_INDEX",
    "MARKETING_INDEX",
    "QueryError",
    "QueryErrorResult",
    "QueryResult",
    "lambda_handler",
    "run_query",
]

MARKETING_INDEX = "marketing_id-index"
FAIL_INDEX = "transaction_id-status-index"

logger = Logger(service="query-lambda")
_deserializer = TypeDeserializer()


class QueryResult(TypedDict):
    """A page of records (query-response schema, QueryResult)."""

    ok: Literal[True]
    records: list[dict[str, Any]]
    count: int
    next_token: str | None


class QueryError(TypedDict):
    """What was wrong with the payload."""

    code: Literal["InvalidRequest", "InvalidNextToken"]
    message: str
    field: str | None


class QueryErrorResult(TypedDict):
    """A bad payload's answer (query-response schema, QueryError)."""

    ok: Literal[False]
    error: QueryError


def _query_parameters(request: QueryRequest, start_key: dict[str, Any] | None) -> dict[str, Any]:
    """Build the DynamoDB Query parameters for a request (newest first where the index allows)."""
    parameters: dict[str, Any] = {
        "TableName": notification_table_name(),
        "KeyConditionExpression": "#pk = :id",
        "ExpressionAttributeNames": {"#pk": "user_id"},
        "ExpressionAttributeValues": {":id": {"S": request.id}},
        "ScanIndexForward": False,
        "Limit": request.limit,
    }
    if request.query_type == "marketing":
        parameters["IndexName"] = MARKETING_INDEX
        parameters["ExpressionAttributeNames"] = {"#pk": "marketing_id"}
    elif request.query_type == "fail":
        parameters["IndexName"] = FAIL_INDEX
        parameters["KeyConditionExpression"] = "#pk = :id AND #status = :failed"
        parameters["ExpressionAttributeNames"] = {"#pk": "transaction_id", "#status": "status"}
        parameters["ExpressionAttributeValues"][":failed"] = {"S": "FAILED"}
    if start_key is not None:
        parameters["ExclusiveStartKey"] = start_key
    return parameters


def run_query(request: QueryRequest) -> QueryResult:
    """Run one page of a validated query against the read table (DynamoDB errors raise)."""
    start_key = None
    if request.next_token is not None:
        start_key = decode_next_token(request.next_token, request.query_type, request.id)
    parameters = _query_parameters(request, start_key)  # built here from a validated request
    response = dynamodb_client(validate_parameters=False).query(**parameters)
    records = [
        QueryRecord.from_item({k: _deserializer.deserialize(v) for k, v in item.items()}).to_wire()
        for item in response.get("Items", [])
    ]
    last_key = response.get("LastEvaluatedKey")
    token = encode_next_token(request.query_type, request.id, last_key) if last_key else None
    return {"ok": True, "records": records, "count": len(records), "next_token": token}


def _request_id(context: Any) -> str | None:
    """Return the caller's request id from the client context's custom map, if any."""
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None)
    if isinstance(custom, dict):
        value = custom.get("request_id")
        if isinstance(value, str) and value:
            return value
    return None


def lambda_handler(event: Any, context: Any) -> QueryResult | QueryErrorResult:
    """Answer a direct invocation: a page of records, or a structured error for a bad payload."""
    logger.set_correlation_id(_request_id(context))
    aws_request_id = getattr(context, "aws_request_id", None)
    if aws_request_id:
        logger.append_keys(function_request_id=aws_request_id)
    try:
        request = parse_request(event)
        result = run_query(request)
    except (InvalidRequestError, InvalidNextTokenError) as error:
        logger.info(
            "rejected query payload",
            extra={"error_code": error.code, "field": error.field, "reason": error.message},
        )
        return {
            "ok": False,
            "error": {"code": error.code, "message": error.message, "field": error.field},
        }
    except Exception:
        logger.exception("query failed")
        raise
    logger.info(
        "query answered",
        extra={
            "query_type": request.query_type,
            "limit": request.limit,
            "count": result["count"],
            "has_next_token": result["next_token"] is not None,
        },
    )
    return result
