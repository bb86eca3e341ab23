"""Where doctor asks its questions: the local stack's endpoint or a real account, read-only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from harness.doctor.readonly import guard
from harness.stack.infra import Infra

__all__ = ["Context"]


@dataclass
class Context:
    """The infra it checks against, the session it asks with, and the time window it looks at."""

    infra: Infra
    region: str
    endpoint_url: str | None = None  # None: the real AWS endpoints of ``session``
    session: boto3.session.Session = field(default_factory=boto3.session.Session)
    window_s: float = 900.0
    #: the running local stack's state (``.harness/state.json``), when there is one
    state: dict[str, Any] | None = None
    project_root: Path | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """Whether this is a local endpoint (no VPC links, security groups or ECR images there)."""
        return self.endpoint_url is not None

    @property
    def since_ms(self) -> int:
        return int((time.time() - self.window_s) * 1000)

    def client(self, service: str) -> Any:
        """A read-only boto3 client (cached per service)."""
        if service not in self._clients:
            credentials: dict[str, str] = {}
            if self.endpoint_url and self.session.get_credentials() is None:
                credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
            self._clients[service] = guard(
                self.session.client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5,
                        read_timeout=30,
                    ),
                    **credentials,
                )
            )
        return self._clients[service]

    def account(self) -> str:
        """The account the session is in (STS GetCallerIdentity)."""
        return str(self.client("sts").get_caller_identity()["Account"])
