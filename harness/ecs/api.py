"""The ECS actions the harness answers itself, in ECS's JSON protocol (the endpoint delegates here).

moto stays the store of clusters, task definitions and services: every action is forwarded to it
(with the ``x-harness-ecs-direct`` header, so the endpoint does not delegate it back), and for the
service this harness runs the answer is completed from the scheduler: ``DescribeServices`` gets
the deployments, events and counts; ``ListTasks``, ``DescribeTasks`` and ``StopTask`` are answered
from the tasks; ``UpdateService`` is validated as ECS does, stored in moto, then acted on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import httpx

from harness.ecs.controller import ServiceController
from harness.ecs.model import Revision
from harness.ingress.servers import ASGIServer, Receive, Scope, Send, read_body

__all__ = ["DIRECT_HEADER", "TARGET_PREFIX", "EcsApi", "EcsError"]

logger = logging.getLogger(__name__)

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
DIRECT_HEADER = "x-harness-ecs-direct"
JSON = "application/x-amz-json-1.1"
NETWORK_MODES = {"bridge", "host", "awsvpc", "none"}
# Fargate's valid task cpu -> memory (MiB) sizes, from the ECS developer guide
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}
_MEMORY_UNITS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gb)?\s*$", re.IGNORECASE)
_CPU_UNITS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpu)?\s*$", re.IGNORECASE)


class EcsError(Exception):
    """An ECS API error: HTTP 400 with ``__type`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class EcsApi:
    """ASGI app answering ECS JSON requests for one service (see the module doc)."""

    def __init__(self, controller: ServiceController, endpoint_url: str, access_key: str) -> None:
        self.controller = controller
        self.endpoint_url = endpoint_url.rstrip("/")
        cfg = controller.config
        self._auth = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/{cfg.region}/ecs/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        self._client = httpx.Client(timeout=30)
        self.server = ASGIServer(self, name="ecs-api")
        controller.on_rollback.append(self._store_rollback)

    def start(self) -> EcsApi:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self._client.close()

    @property
    def url(self) -> str:
        return self.server.url

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, payload = await asyncio.to_thread(self.handle, headers, body)
        raw = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON.encode()),
                    (b"content-length", b"%d" % len(raw)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one ECS request: (HTTP status, JSON document)."""
        action = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return _error(EcsError("SerializationException", "the body is not valid JSON"))
        handler = getattr(self, f"_{_snake(action)}", None)
        try:
            if handler is not None and isinstance(params, dict):
                result: tuple[int, dict[str, Any]] = handler(headers, params)
                return result
            return self._forward(headers, action, params)
        except EcsError as exc:
            return _error(exc)

    # -- forwarding to moto -----------------------------------------------------------------
    def _forward(
        self, headers: dict[str, str], action: str, params: Any
    ) -> tuple[int, dict[str, Any]]:
        sent = {
            "content-type": JSON,
            "x-amz-target": TARGET_PREFIX + action,
            "authorization": headers.get("authorization", self._auth),
            DIRECT_HEADER: "1",
        }
        response = self._client.post(self.endpoint_url + "/", headers=sent, json=params)
        try:
            document = response.json()
        except ValueError:
            document = {"__type": "ServerException", "message": response.text[:500]}
        return response.status_code, document if isinstance(document, dict) else {}

    def _call(self, headers: dict[str, str], action: str, params: dict[str, Any]) -> dict[str, Any]:
        status, document = self._forward(headers, action, params)
        if status >= 400:
            code = str(document.get("__type", "ClientException")).rsplit("#", 1)[-1]
            raise EcsError(code, str(document.get("message") or document.get("Message") or code))
        return document

    def _store_rollback(self, revision: Revision) -> None:
        """The circuit breaker rolled back: the service's task definition is the old one again."""
        cfg = self.controller.config
        params = {"cluster": cfg.cluster, "service": cfg.service_name}
        self._call({}, "UpdateService", {**params, "taskDefinition": revision.arn})

    # -- which requests are ours ---------------------------------------------------------------
    def _our_cluster(self, params: dict[str, Any]) -> bool:
        cfg = self.controller.config
        return str(params.get("cluster") or "default") in (cfg.cluster, cfg.cluster_arn)

    def _our_service(self, name: Any) -> bool:
        cfg = self.controller.config
        return str(name) in (cfg.service_name, cfg.service_arn)

    # -- the actions -----------------------------------------------------------------------------
    def _update_service(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not (self._our_cluster(params) and self._our_service(params.get("service"))):
            return self._forward(headers, "UpdateService", params)
        desired = params.get("desiredCount")
        if desired is not None and (not isinstance(desired, int) or desired < 0):
            raise EcsError(
                "InvalidParameterException", "The desired count must be a non-negative integer."
            )
        revision = None
        if params.get("taskDefinition"):
            found = self._call(
                headers, "DescribeTaskDefinition", {"taskDefinition": params["taskDefinition"]}
            )
            revision = Revision.from_task_definition(found["taskDefinition"])
        self._configure(params.get("deploymentConfiguration"))
        document = self._call(headers, "UpdateService", params)
        self.controller.update(desired, revision, bool(params.get("forceNewDeployment")))
        if isinstance(document.get("service"), dict):
            self._overlay(document["service"])
        return 200, document

    def _configure(self, configuration: Any) -> None:
        if not isinstance(configuration, dict):
            return
        cfg = self.controller.config
        minimum = configuration.get("minimumHealthyPercent", cfg.minimum_healthy_percent)
        maximum = configuration.get("maximumPercent", cfg.maximum_percent)
        if not 0 <= int(minimum) <= 100 or int(maximum) < int(minimum):
            raise EcsError(
                "InvalidParameterException",
                "maximumPercent must be greater than or equal to minimumHealthyPercent.",
            )
        cfg.minimum_healthy_percent, cfg.maximum_percent = int(minimum), int(maximum)
        breaker = configuration.get("deploymentCircuitBreaker")
        if isinstance(breaker, dict):
            cfg.circuit_breaker = bool(breaker.get("enable"))
            cfg.rollback = bool(breaker.get("rollback"))

    def _describe_services(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        status, document = self._forward(headers, "DescribeServices", params)
        if status == 200 and self._our_cluster(params):
            for service in document.get("services", []):
                if self._our_service(service.get("serviceName")):
                    self._overlay(service)
        return status, document

    def _overlay(self, service: dict[str, Any]) -> None:
        controller, cfg = self.controller, self.controller.config
        running, pending = controller.counts()
        service.update(
            {
                "desiredCount": controller.desired_count,
                "runningCount": running,
                "pendingCount": pending,
                "taskDefinition": controller.primary.revision.arn,
                "deployments": [d.describe(*controller.counts(d)) for d in controller.deployments],
                "events": controller.events.describe(),
                "launchType": "FARGATE",
                "healthCheckGracePeriodSeconds": int(cfg.grace_period_s),
                "deploymentConfiguration": {
                    "minimumHealthyPercent": cfg.minimum_healthy_percent,
                    "maximumPercent": cfg.maximum_percent,
                    "deploymentCircuitBreaker": {
                        "enable": cfg.circuit_breaker,
                        "rollback": cfg.rollback,
                    },
                },
            }
        )

    def _list_tasks(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not self._our_cluster(params):
            return self._forward(headers, "ListTasks", params)
        wanted = str(params.get("desiredStatus") or "RUNNING")
        if wanted not in ("RUNNING", "PENDING", "STOPPED"):
            raise EcsError("InvalidParameterException", f"Invalid desiredStatus: {wanted}")
        service, family = params.get("serviceName"), params.get("family")
        tasks = [
            t
            for t in self.controller.snapshot()
            if (t.desired_status == wanted or (wanted == "PENDING" and t.last_status == "PENDING"))
            and (service is None or self._our_service(service))
            and (family is None or t.revision.family == family)
        ]
        return 200, {"taskArns": [t.arn for t in tasks]}

    def _describe_tasks(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not self._our_cluster(params):
            return self._forward(headers, "DescribeTasks", params)
        wanted = params.get("tasks")
        if not isinstance(wanted, list) or not wanted:
            raise EcsError("InvalidParameterException", "Tasks cannot be empty.")
        known = {key: t for t in self.controller.snapshot() for key in (t.arn, t.id)}
        found = [known[str(w)].describe() for w in wanted if str(w) in known]
        failures = [{"arn": str(w), "reason": "MISSING"} for w in wanted if str(w) not in known]
        return 200, {"tasks": found, "failures": failures}

    def _stop_task(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not self._our_cluster(params):
            return self._forward(headers, "StopTask", params)
        task = self.controller.stop_task(str(params.get("task", "")), str(params.get("reason", "")))
        if task is None:
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        return 200, {"task": task.describe()}

    def _register_task_definition(
        self, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        validate_task_definition(params)
        return self._forward(headers, "RegisterTaskDefinition", params)


def validate_task_definition(params: dict[str, Any]) -> None:
    """What ECS rejects and moto accepts (botocore checks the shapes before sending)."""
    containers = params.get("containerDefinitions") or []
    if not containers:
        raise EcsError("ClientException", "Container list cannot be empty.")
    for container in containers:
        if not container.get("name") or not container.get("image"):
            raise EcsError(
                "ClientException", "Container.name and Container.image should not be null or empty."
            )
    mode = params.get("networkMode")
    if mode is not None and mode not in NETWORK_MODES:
        raise EcsError("ClientException", f"Network mode {mode} is not valid.")
    if "FARGATE" in (params.get("requiresCompatibilities") or []):
        if mode != "awsvpc":
            raise EcsError(
                "ClientException",
                "Fargate only supports network mode 'awsvpc'.",
            )
        cpu, memory = (
            _units(params.get("cpu"), _CPU_UNITS, 1024),
            _units(params.get("memory"), _MEMORY_UNITS, 1024),
        )
        if cpu is None or memory is None:
            raise EcsError(
                "ClientException",
                "Fargate requires that 'cpu' and 'memory' be set at the task level.",
            )
        if memory not in FARGATE_MEMORY.get(cpu, set()):
            raise EcsError(
                "ClientException",
                "No Fargate configuration exists for given values: "
                f"{cpu} CPU, {memory} memory. See the Amazon ECS documentation for the "
                "valid combinations.",
            )
    for container in containers:
        log = container.get("logConfiguration") or {}
        driver = log.get("logDriver")
        valid = {"awslogs", "splunk", "awsfirelens", "json-file", "syslog", "fluentd", "gelf"}
        if driver is not None and driver not in valid:
            raise EcsError("ClientException", f"Log driver {driver} is not supported.")


def _units(value: Any, pattern: re.Pattern[str], per_unit: int) -> int | None:
    """'256' -> 256; '1 vCPU' / '2 GB' -> 1024 / 2048."""
    if value is None:
        return None
    match = pattern.match(str(value))
    if match is None:
        raise EcsError("ClientException", f"Invalid setting for cpu or memory: {value!r}.")
    number = float(match.group(1))
    return int(number * per_unit) if match.group(2) else int(number)


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def _error(exc: EcsError) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": exc.code, "message": exc.message}
