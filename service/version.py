"""The service's name and the version of its HTTP API."""

from __future__ import annotations

SERVICE_NAME = "query-service"
API_VERSION = "3.0.0"
