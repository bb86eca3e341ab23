"""Typed failures of a query, each carrying the HTTP status the service answers with."""

from __future__ import annotations

from typing import ClassVar


class QueryError(Exception):
    """A query that could not be answered; subclasses fix the HTTP status and the error code."""

    status_code: ClassVar[int] = 502
    code: ClassVar[str] = "QueryError"

    def __init__(
        self, message: str, *, field: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail
        """What the service logs but does not tell the client (e.g. the Lambda's errorMessage)."""


class InvalidNextToken(QueryError):
    """The paging token is not one this query issued (400)."""

    status_code = 400
    code = "InvalidNextToken"


class LambdaFunctionError(QueryError):
    """The query Lambda raised (X-Amz-Function-Error) (502)."""

    status_code = 502
    code = "LambdaFunctionError"


class LambdaRejectedRequest(QueryError):
    """The query Lambda refused the payload the service sent (502: a service/Lambda mismatch)."""

    status_code = 502
    code = "LambdaRejectedRequest"


class InvalidLambdaResult(QueryError):
    """The query Lambda answered with something that is not a query result (502)."""

    status_code = 502
    code = "InvalidLambdaResult"


class LambdaInvokeError(QueryError):
    """AWS refused the Invoke call for a reason retrying will not fix, e.g. access denied (502)."""

    status_code = 502
    code = "LambdaInvokeError"


class LambdaUnavailable(QueryError):
    """The Lambda is throttled, missing, failing on AWS's side or unreachable (503)."""

    status_code = 503
    code = "LambdaUnavailable"


class LambdaTimeout(QueryError):
    """No result within the read timeout, or the function itself timed out (504)."""

    status_code = 504
    code = "LambdaTimeout"
