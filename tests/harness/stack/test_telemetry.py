"""Telemetry's gateway access log: the file, AWS/ApiGateway metrics and the stage's log group."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.stack.infra import load_infra
from harness.stack.telemetry import Telemetry


def test_gateway_access_log_goes_to_file_metrics_and_the_stage_log_group(
    endpoint: Any, aws_client_factory: Callable[..., Any], tmp_path: Path
) -> None:
    infra = load_infra(region="ap-southeast-1", account_id="000000000000")
    group = f"/aws/apigateway/access-{uuid.uuid4().hex[:6]}"
    infra.api_access_log_group = group
    logs = aws_client_factory("logs")
    logs.create_log_group(logGroupName=group)
    telemetry = Telemetry(infra, endpoint.url, "ap-southeast-1")
    path = tmp_path / "gateway-access.log"
    write = telemetry.gateway_access_log(path)
    request_id = str(uuid.uuid4())
    write({"requestId": request_id, "status": 502, "latencyMs": 3.0, "integrationLatencyMs": 2.0})

    assert json.loads(path.read_text())["requestId"] == request_id
    assert telemetry.access_logs is not None and telemetry.access_logs.ship() == 1
    (event,) = logs.filter_log_events(logGroupName=group, filterPattern=f'"{request_id}"')["events"]
    assert event["logStreamName"] == f"{infra.api_document['info']['title']}/{infra.api_stage}"
    assert telemetry.sink.flush(everything=True) == 5  # Count, 4XX, 5XX, Latency, Integration
    telemetry.stop()  # closes the access log, which stays open between requests
    write({"requestId": "after-stop", "status": 200, "latencyMs": 1.0})  # still written
    assert json.loads(path.read_text().splitlines()[-1])["requestId"] == "after-stop"
