"""The application factory: `uvicorn --factory service.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig

from service.error_handlers import install_error_handlers
from service.invoker import LambdaInvoker, QueryInvoker
from service.json_logging import configure_logging
from service.request_context import RequestContextMiddleware
from service.routes import health, query
from service.settings import Settings
from service.version import API_VERSION

TITLE = "Query Service"
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
DESCRIPTION = (
    "Read side of the push-notification system: query notification records by user, "
    "by marketing campaign, or the FAILED records of a transaction."
)


def operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation ids: the route's name (queryUser, queryMarketing, ...)."""
    return route.name


def create_app(settings: Settings | None = None, invoker: QueryInvoker | None = None) -> FastAPI:
    """Build the service; settings default to the environment, the invoker to boto3 Lambda."""
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=API_VERSION,
        separate_input_output_schemas=False,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry: the service exports none (its logs are JSON lines on
        # stderr, its metrics CloudWatch's) and ships no OpenTelemetry SDK, yet with it on
        # FastAPI looks up the three global providers on every request.
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.invoker = invoker if invoker is not None else LambdaInvoker.from_settings(settings)
    app.include_router(query.router)
    app.include_router(health.router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    return app
