"""The request path in front of the service: API Gateway, the load balancer and the ECS task
replicas.

``gateway`` the Internal API Gateway (stage, routes, resource policy, access log);
``api_definition`` reads its OpenAPI definition; ``load_balancer`` the ALB; ``replicas`` and
``zygote`` the service processes; ``servers`` ASGI servers in threads. Never imports moto or boto3
(it talks HTTP only), nor ``aws``, ``streams``, ``stack`` or ``cli``.
"""
