"""`python -m api`: serve the API with uvicorn on the configured host and port.

Exits directly once uvicorn has shut down: this process holds a temporalio client, and such a
process can abort during interpreter teardown (temporalio/sdk-python#300).
"""

from __future__ import annotations

import uvicorn

from api.serving import proxy_options
from cli.exit import hard_exit
from config import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "api.app:app_factory",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        **proxy_options(settings),
    )
    hard_exit(0)


if __name__ == "__main__":
    main()
