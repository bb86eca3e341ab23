"""Service settings, read from the environment (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Configuration of the query service; every field has an environment variable."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True
    )

    query_lambda_name: str = Field(default="query-lambda", min_length=1)
    """QUERY_LAMBDA_NAME: name (or ARN) of the query Lambda."""

    aws_region: str = Field(
        default="ap-southeast-1",
        min_length=1,
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "aws_region"),
    )
    """AWS_REGION (or AWS_DEFAULT_REGION): region of the Lambda client."""

    lambda_connect_timeout: float = Field(default=2.0, gt=0)
    """LAMBDA_CONNECT_TIMEOUT: seconds to open a connection to the Lambda endpoint."""

    lambda_read_timeout: float = Field(default=15.0, gt=0)
    """LAMBDA_READ_TIMEOUT: seconds to wait for the invocation result (beyond this: 504)."""

    lambda_max_attempts: int = Field(default=3, ge=1, le=10)
    """LAMBDA_MAX_ATTEMPTS: total attempts, first try included (botocore standard retry mode)."""

    log_level: LogLevel = "INFO"
    """LOG_LEVEL: level of the service's JSON logs."""

    host: str = "127.0.0.1"
    """HOST: interface `python -m service` binds to (the Dockerfile sets 0.0.0.0)."""

    port: int = Field(default=8000, ge=0, le=65535)
    """PORT: port `python -m service` listens on."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        """Accept `info` as well as `INFO`."""
        return value.upper() if isinstance(value, str) else value
