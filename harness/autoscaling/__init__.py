"""Application Auto Scaling for the ECS service: target tracking from the Terraform policy.

``target_tracking`` is pure decisions; ``controller`` reads CloudWatch and changes desiredCount
through the ECS API with boto3 clients it is given; ``activities`` is the store the endpoint
answers DescribeScalingActivities from (``harness.aws`` imports it, so this file imports
nothing: import the modules themselves). May import boto3 clients given to it, httpx and
``harness.cloudwatch``; never moto, and no other part of the harness.
"""
