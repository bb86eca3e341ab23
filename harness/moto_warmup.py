"""Start-up cost of moto, paid once and early instead of on the first requests.

moto loads its backends lazily. Three first uses dominate the time to a provisioned stack:
the EC2 models (imported by ECS and ELBv2) list the regions through three fresh boto3 sessions,
each re-reading botocore's endpoint data; the IAM backend parses ~1,500 managed policies; and
the API Gateway and ECS modules import. :func:`memoize_region_listing` makes the region listing
a per-process lookup, and :func:`prewarm` does the rest in a background thread while the caller
does other work (reading infra/, starting replicas).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import boto3.session

logger = logging.getLogger("harness.moto_warmup")

#: Backends the stack provisions, in the order provisioning first needs them.
BACKENDS = ("logs", "sqs", "iam", "dynamodb", "dynamodbstreams", "awslambda", "ecs", "apigateway")

_lock = threading.Lock()
_memoized = False


def memoize_region_listing() -> None:
    """Make ``boto3.session.Session.get_available_regions`` a cached, process-wide lookup."""
    global _memoized
    with _lock:
        if _memoized:
            return
        original = boto3.session.Session.get_available_regions
        shared = boto3.session.Session()  # one botocore loader: endpoint data is read once

        @functools.lru_cache(maxsize=256)
        def cached(
            service_name: str, partition_name: str, allow_non_regional: bool
        ) -> tuple[str, ...]:
            return tuple(original(shared, service_name, partition_name, allow_non_regional))

        def get_available_regions(
            self: Any,
            service_name: str,
            partition_name: str = "aws",
            allow_non_regional: bool = False,
        ) -> list[str]:
            return list(cached(service_name, partition_name, allow_non_regional))

        get_available_regions.__wrapped_by_harness__ = original  # type: ignore[attr-defined, unused-ignore]
        boto3.session.Session.get_available_regions = get_available_regions
        _memoized = True


def _warm(account_id: str) -> None:
    from moto.backends import get_backend

    for name in BACKENDS:
        try:
            backends = get_backend(name)  # type: ignore[call-overload]
            if name == "iam":
                backends[account_id]["global"]  # builds the backend: loads the managed policies
        except Exception:  # a warm-up failure must not stop the endpoint; the request will say
            logger.exception("warming moto's %s backend failed", name)
    logger.debug("moto backends warmed: %s", ", ".join(BACKENDS))


def prewarm(account_id: str = "123456789012") -> threading.Thread:
    """Import and build moto's backends in a daemon thread; returns the thread."""
    memoize_region_listing()
    thread = threading.Thread(target=_warm, args=(account_id,), name="moto-warmup", daemon=True)
    thread.start()
    return thread


__all__ = ["BACKENDS", "memoize_region_listing", "prewarm"]
