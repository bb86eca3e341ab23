"""The serving side's wiring: the ECS tasks' environment, and the gateway in front of the load
balancer (with the telemetry that observes both)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.stack.infra import Infra
from harness.stack.project import code_dir

if TYPE_CHECKING:  # imported where used: the endpoint is launched before they load (~0.35 s)
    from harness.ingress.gateway import Gateway
    from harness.ingress.load_balancer import LoadBalancer
    from harness.stack.stack import StackConfig
    from harness.stack.telemetry import Telemetry


def task_environment(infra: Infra, edge: str, region: str, root: Path) -> dict[str, str]:
    """The environment of the ECS service's tasks: the container's, pointed at the endpoint."""
    env = dict(infra.container_environment)
    env.update(
        {
            "AWS_ENDPOINT_URL": edge,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            "PYTHONPATH": str(code_dir(root)),
        }
    )
    return env


def start_gateway(
    infra: Infra,
    load_balancer: LoadBalancer,
    telemetry: Telemetry | None,
    config: StackConfig,
    account: str,
    log_dir: Path,
) -> Gateway:
    """The API gateway in front of ``load_balancer``, started; telemetry observes both."""
    from harness.ingress.gateway import Gateway  # noqa: PLC0415 - see the top

    if telemetry is not None:
        load_balancer.observer = telemetry.load_balancer_metrics(load_balancer.target_health)
    return Gateway(
        infra.api_document,
        load_balancer.url,
        stage=infra.api_stage,
        allowed_source_cidrs=config.allowed_source_cidrs,
        region=config.region,
        account_id=account,
        access_log=log_dir / "gateway-access.log"
        if telemetry is None
        else telemetry.gateway_access_log(log_dir / "gateway-access.log"),
        port=config.gateway_port,
        # served on the ALB's event loop, calling it in-process (ARCHITECTURE.md)
        upstream_app=load_balancer,
        loop_host=load_balancer.server,
    ).start()
