"""`python -m service`: run the service with uvicorn on the settings' host and port."""

from __future__ import annotations

import uvicorn

from service.json_logging import uvicorn_log_config
from service.settings import Settings


def main() -> None:
    """Serve `create_app()` until interrupted."""
    settings = Settings()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=uvicorn_log_config(settings.log_level),
    )


if __name__ == "__main__":
    main()
