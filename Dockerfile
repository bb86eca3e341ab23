# Query Service V3 for ECS Fargate: FastAPI on uvicorn, port 8000, health check on /health.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app && useradd --system --gid app --no-create-home --home-dir /app app

WORKDIR /app
# Only the service is in the build context, so `pip install .` installs the service and its own
# dependencies (the base set in pyproject.toml): no Lambdas, no harness, no entry points (setup.py).
COPY pyproject.toml setup.py README.md ./
COPY service ./service
RUN pip install . && rm -rf build *.egg-info

USER app
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]

# `python -m service` = uvicorn --factory service.app:create_app on HOST:PORT, all logs JSON.
CMD ["python", "-m", "service"]
