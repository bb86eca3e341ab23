"""GET /health: liveness for the load balancer and the ECS health check."""

from __future__ import annotations

from fastapi import APIRouter

from service.models import HealthResponse
from service.routes.query import REQUEST_ID_RESPONSE_HEADER
from service.version import API_VERSION, SERVICE_NAME

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    name="health",
    summary="Liveness",
    responses={200: {"description": "The service is up.", "headers": REQUEST_ID_RESPONSE_HEADER}},
)
async def health() -> HealthResponse:
    """Answer while the process serves HTTP; does not call the Lambda."""
    return HealthResponse(status="ok", service=SERVICE_NAME, version=API_VERSION)
