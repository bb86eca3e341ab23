"""CloudWatch for the stack: AWS's metrics of ECS, the ALB and API Gateway, and awslogs task logs.

May import boto3 clients given to it (never created here), psutil and httpx; never moto, and no
other part of the harness (the parts it measures hand it callables).
"""

from harness.cloudwatch.metrics import MetricSink, period_for
from harness.cloudwatch.publishers import (
    ApiGatewayMetrics,
    EcsServiceMetrics,
    LoadBalancerMetrics,
    TaskProcess,
    elb_dimension,
)
from harness.cloudwatch.task_logs import AwsLogsConfig, TaskLogShipper

__all__ = [
    "ApiGatewayMetrics",
    "AwsLogsConfig",
    "EcsServiceMetrics",
    "LoadBalancerMetrics",
    "MetricSink",
    "TaskLogShipper",
    "TaskProcess",
    "elb_dimension",
    "period_for",
]
