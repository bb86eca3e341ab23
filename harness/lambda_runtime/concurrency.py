"""The account's Lambda concurrency: AWS's default quota, capped by what this machine can hold.

AWS: "By default, Lambda gives your account a total concurrency limit of 1,000 concurrent
executions across all functions in an AWS Region"; functions with reserved concurrency take it
out of that pool ("You can reserve up to the Unreserved account concurrency value ... minus
100"), the others share what is left
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html).

Here each concurrent execution is an environment process. ``--lambda-concurrency`` (or
``HARNESS_LAMBDA_CONCURRENCY``) sets the account limit; it is lowered to what the machine can
hold: one environment per ``ENVIRONMENT_MB`` of the memory available at start, and at most half
the user's process limit (``ulimit -u``). On the 24 GB, 2-core machine this was written on the
cap is ~330, well above the 64 concurrent requests the stack is measured with.
"""

from __future__ import annotations

import logging
import os
import resource

import psutil

__all__ = [
    "DEFAULT_ACCOUNT_CONCURRENCY",
    "ENVIRONMENT_MB",
    "account_concurrency",
    "machine_cap",
]

LOGGER = logging.getLogger(__name__)
DEFAULT_ACCOUNT_CONCURRENCY = 1000  # AWS's default regional quota
ENVIRONMENT_MB = 64  # a forked environment after init and a few queries (measured ~40-60 MB RSS)
ENV_VAR = "HARNESS_LAMBDA_CONCURRENCY"


def machine_cap() -> int:
    """How many environments this machine can hold (memory available now, process limit)."""
    by_memory = psutil.virtual_memory().available // (ENVIRONMENT_MB * 1024 * 1024)
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    by_processes = soft // 2 if soft != resource.RLIM_INFINITY else by_memory
    return max(1, int(min(by_memory, by_processes)))


def account_concurrency(requested: int | None = None) -> int:
    """The account limit to enforce: ``requested``, else $HARNESS_LAMBDA_CONCURRENCY, else
    AWS's 1,000; lowered to :func:`machine_cap` (with a warning) when the machine holds fewer."""
    if requested is None:
        raw = os.environ.get(ENV_VAR, "").strip()
        if raw:
            try:
                requested = int(raw)
            except ValueError:
                raise ValueError(f"{ENV_VAR} must be a whole number, not {raw!r}") from None
    if requested is None:
        requested = DEFAULT_ACCOUNT_CONCURRENCY
    if requested < 1:
        raise ValueError(f"the Lambda concurrency limit must be at least 1, not {requested}")
    cap = machine_cap()
    if requested > cap:
        if requested != DEFAULT_ACCOUNT_CONCURRENCY:
            LOGGER.warning(
                "Lambda concurrency %d lowered to %d: this machine holds about %d "
                "environments (%d MB each)",
                requested,
                cap,
                cap,
                ENVIRONMENT_MB,
            )
        return cap
    return requested
