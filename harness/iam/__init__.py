"""Role credentials for the components: a container-credentials endpoint for ECS tasks and the
execution role's session for Lambda environments, both from STS AssumeRole on the endpoint.

May import the standard library's HTTP server and boto3 clients given to it; never moto, and no
other part of the harness.
"""

from harness.iam.credentials import (
    ContainerCredentialsServer,
    ExecutionRoleCredentials,
    RoleCredentials,
    lambda_environment,
)

__all__ = [
    "ContainerCredentialsServer",
    "ExecutionRoleCredentials",
    "RoleCredentials",
    "lambda_environment",
]
