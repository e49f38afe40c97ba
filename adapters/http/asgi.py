"""The ASGI entry point for server processes started by uvicorn (`grievance serve --workers N`): each
builds its own Services from the environment, as the composition root does for one process."""

from __future__ import annotations

import gc
import os

import anyio.to_thread
from litestar import Litestar

from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.logs import configure_logging
from adapters.settings import Settings

THREADS_VARIABLE = "GRIEVANCE_HTTP_THREADS"


def from_env() -> Litestar:
    """The service for this process's settings; the store is opened here, in the server process."""
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level or "info")
    services, _ = build_http_services(settings)
    app = with_thread_pool(create_app(services), int(os.environ.get(THREADS_VARIABLE, "40")))

    async def close_store() -> None:
        services.chain.close()

    app.on_shutdown.append(close_store)
    return app


def with_thread_pool(app: Litestar, threads: int) -> Litestar:
    """`app`, answering store-reading requests on up to `threads` threads."""

    async def widen_thread_pool() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        # What exists at startup (the chart, the app, the libraries) lives as long as the process: keep
        # it out of the collector's full sweeps, which otherwise stall every request for tens of ms.
        gc.freeze()

    app.on_startup.append(widen_thread_pool)
    return app
