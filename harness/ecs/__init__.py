"""The ECS service as a living thing: tasks, the service scheduler, deployments, circuit breaker.

``timescale`` the one factor dividing every AWS period; ``model`` ECS's nouns as the API shows
them; ``runner`` a task's process (forked from the service's zygote); ``controller`` the service
scheduler (desired count, rolling deployments, rollback); ``api`` the ECS actions the harness
answers itself (the endpoint delegates them here). May import ``harness.ingress`` (zygote,
replicas' helpers, the load balancer's protocol), httpx and the standard library; never moto,
boto3/botocore, ``aws``, ``lambda_runtime``, ``streams``, ``stack``, ``contracts`` or ``cli``.
"""
