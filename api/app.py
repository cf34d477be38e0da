"""The FastAPI application: settings, database and Temporal client live on app.state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError

import web
from api import routing
from api.body_limit import BodyLimit
from api.errors import http_refusal, invalid_request
from api.paging import CursorError, bad_cursor
from config import Settings, get_settings
from connection.client import connect
from storage.db import make_engine, make_sessionmaker
from telemetry import tracing
from telemetry.http import RouteRecorder, TelemetryMiddleware, metrics_endpoint
from telemetry.logs import configure_logging

log = logging.getLogger("trlgate.api")
TOO_LARGE = {
    "description": "The request body is larger than the API accepts (the reason says how much it accepts)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}


async def _connect_with_retry(settings: Settings, attempts: int = 30) -> Client | None:
    for attempt in range(attempts):
        try:
            return await connect(settings)
        except (RuntimeError, OSError, RPCError) as err:  # the SDK says "Failed client connect" as RuntimeError
            if attempt == attempts - 1:
                log.error("Temporal unreachable at %s: %s", settings.temporal_address, err)
                return None
            await asyncio.sleep(1)
    return None


# How long a client should wait before trying again when every pooled connection is in use.
POOL_RETRY_AFTER_SECONDS = 2


async def _database_busy(_request: Request, _err: Exception) -> JSONResponse:
    """Every pooled database connection stayed busy for the pool's whole timeout: a transient
    overload, answered as one (503, retry shortly), never as a server error."""
    return JSONResponse(
        {"detail": "the database is busy (every connection is in use): retry shortly"},
        status_code=503,
        headers={"Retry-After": str(POOL_RETRY_AFTER_SECONDS)},
    )


def create_app(settings: Settings | None = None, client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        tracing.instrument_engine(engine)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
        app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
        app.state.jwt_secret = settings.resolved_jwt_secret()
        app.state.temporal = client or await _connect_with_retry(settings)
        yield
        await engine.dispose()

    app = FastAPI(
        title="trlgate",
        version="0.1.0",
        description="TRL-gated stage-gate workflow engine for public R&D funding programmes.",
        lifespan=lifespan,
        exception_handlers={RequestValidationError: invalid_request, StarletteHTTPException: http_refusal},
        routes=list(routing.routes()),
    )
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(CursorError, bad_cursor)
    # Innermost of the middlewares: it sees which route the router matched (telemetry/http.py).
    app.add_middleware(RouteRecorder)
    # The web workbench's pages are among the routes; its middleware, static files and handlers:
    web.install(app, csrf_secret=settings.resolved_jwt_secret(), secure_cookies=settings.web_secure_cookies)
    # The Temporal Web UI calls the codec endpoints from the browser, with the user's token.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    ui = [f"http://{host}:{settings.temporal_ui_port}" for host in ("127.0.0.1", "localhost")]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    # Outermost: it times the whole request, and sees the route the router matched.
    app.add_middleware(TelemetryMiddleware)
    # Prometheus scrapes the API where it listens; no schema entry (nothing for a client to call).
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    tracing.instrument_app(app)
    _document_body_limit(app)
    return app


def _document_body_limit(app: FastAPI) -> None:
    """Every operation that takes a body documents the 413 the body limit answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in generate()["paths"].values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        operation["responses"].setdefault("413", TOO_LARGE)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def app_factory() -> FastAPI:
    """For `uvicorn --factory api.app:app_factory` (and `python -m api`): the process's logging and
    tracing are set here, after uvicorn has set up its own loggers."""
    settings = get_settings()
    configure_logging("api", settings.log_format, settings.log_level)
    tracing.configure_tracing("trlgate-api", settings.otlp_endpoint)
    return create_app(settings)
