"""Fault injection on the real components of the embedded stack.

``spec`` parses and checks a fault (kind, scope, fraction, key patterns); ``registry`` holds the
live faults of one endpoint process, counts how often each fired and serves the control API
(``/_harness/faults`` on the endpoint); ``lambda_faults`` acts on an invocation of the Lambda
runtime (function error, partial batch response, paused or killed worker); ``dynamodb_faults``
answers DynamoDB requests with AWS's throttling errors and watches writes for older images;
``pollers`` restarts event-source-mapping pollers through the mapping API; ``client`` drives a
running endpoint over HTTP (CLI, pytest plugin, soak) and kills service replicas by pid.

May import ``lambda_runtime`` (the worker and its outcome), httpx and psutil; never moto,
``aws``, ``streams``, ``ingress``, ``stack``, ``cli`` or ``contracts``: the endpoint
(``harness.aws``) installs the registry and hands it what it needs as callables.
"""

from __future__ import annotations

from harness.faults.spec import FaultSpec, FaultSpecError, parse_spec

__all__ = ["FaultSpec", "FaultSpecError", "parse_spec"]
