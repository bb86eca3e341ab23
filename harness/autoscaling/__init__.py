"""Application Auto Scaling for the ECS service: target tracking from the Terraform policy.

``target_tracking`` is pure decisions; ``controller`` reads CloudWatch and changes desiredCount
through the ECS API with boto3 clients it is given; ``activities`` is the store the endpoint
answers DescribeScalingActivities from (``harness.aws`` imports it). May import boto3 clients
given to it and httpx; never moto, and no other part of the harness.
"""

from harness.autoscaling.controller import Autoscaler
from harness.autoscaling.target_tracking import (
    Decision,
    ScalableTarget,
    TargetTracker,
    TargetTrackingPolicy,
)

__all__ = ["Autoscaler", "Decision", "ScalableTarget", "TargetTracker", "TargetTrackingPolicy"]
