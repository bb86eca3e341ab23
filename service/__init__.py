"""Query Service V3: the FastAPI read-side service that runs on ECS Fargate (see `service.app`)."""
