"""A real API over HTTP: uvicorn on a free loopback port, a worker, the local Temporal dev server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from api.serving import proxy_options
from config import Settings
from storage.db import make_engine, make_sessionmaker
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from worker import build_worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApiStack:
    base_url: str
    http: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    client: Client
    tokens: dict[str, str] = field(default_factory=dict)

    async def login(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
        if username not in self.tokens:
            r = await self.http.post("/auth/token", data={"username": username, "password": password})
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**(await self.login(user) if user else {}), **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)


JWT_SECRET = "test-secret-of-at-least-thirty-two-bytes!"


@asynccontextmanager
async def api_stack(
    client: Client,
    database_url: str,
    task_queue: str,
    seconds_per_day: float,
    worker_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[ApiStack]:
    """Progress reports are off unless asked for: most tests live through years in seconds and
    are about something else. `worker_options` go to the worker (e.g. its concurrency)."""
    settings = Settings(
        database_url=database_url,
        task_queue=task_queue,
        jwt_secret=JWT_SECRET,
        seconds_per_day=seconds_per_day,
        **{"progress_reports": False, **overrides},
    )
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    port = free_port()
    app = create_app(settings, client=client)
    # Served as `python -m api` serves it, trusting the same proxies (none unless a test says so).
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxy_options(settings))
    )
    serving = asyncio.create_task(server.serve())
    await assert_eventually(lambda: server.started, "uvicorn serving", interval=0.01)
    try:
        async with (
            build_worker(client, task_queue, sessionmaker, **(worker_options or {})),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
        ):
            yield ApiStack(f"http://127.0.0.1:{port}", http, sessionmaker, client)
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()
