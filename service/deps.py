"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.invoker import QueryInvoker


async def get_invoker(request: Request) -> QueryInvoker:
    """The invoker `create_app` put on the application state."""
    invoker: QueryInvoker = request.app.state.invoker
    return invoker


async def get_request_id(request: Request) -> str:
    """The id the request-context middleware assigned to this request."""
    return str(request.state.request_id)


InvokerDep = Annotated[QueryInvoker, Depends(get_invoker)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
