"""The worker's HTTP port: /metrics (the application's worker metrics), /health/live and
/health/ready (the database and Temporal answer, the worker polls and is not draining)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.worker import Worker

from telemetry.metrics import WORKER_REGISTRY

log = logging.getLogger("trlgate.worker")


@dataclass
class WorkerState:
    client: Client
    sessionmaker: async_sessionmaker[AsyncSession]
    worker: Worker | None = None
    draining: bool = False

    async def not_ready(self) -> list[str]:
        """Why the worker should get no work now (empty: ready)."""
        reasons = []
        if self.draining:
            reasons.append("draining: shutting down, running activities finish")
        elif self.worker is None or not self.worker.is_running:
            reasons.append("the worker is not polling")
        # Both checks report a failing backing service rather than fail themselves.
        try:
            async with self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
        except Exception as err:
            reasons.append(f"database: SELECT 1 failed: {err.__class__.__name__}")
        try:
            await self.client.service_client.check_health()
        except Exception as err:
            reasons.append(f"temporal: health check failed: {err.__class__.__name__}")
        return reasons


def worker_app(state: WorkerState) -> Starlette:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(WORKER_REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def live(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
        reasons = await state.not_ready()
        return JSONResponse({"status": "not ready" if reasons else "ok", "reasons": reasons}, 503 if reasons else 200)

    return Starlette(
        routes=[Route("/metrics", metrics), Route("/health/live", live), Route("/health/ready", ready)],
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The worker handles SIGTERM itself (it drains); uvicorn must not take the signal.
        yield


@dataclass
class Serving:
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(state: WorkerState, host: str, port: int) -> Serving:
    """Start the port (0: any free port, for tests) and return once it listens. Raises OSError when
    the port is taken (bound here: uvicorn would exit the process instead)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    server = _Server(uvicorn.Config(worker_app(state), host=host, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises why it could not start (the port is taken...)
            raise RuntimeError(f"the worker's HTTP port {host}:{port} did not start")
        await asyncio.sleep(0.01)
    return Serving(server, task)
