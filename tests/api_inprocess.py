"""The API in this process (httpx over ASGI) on a test database, with no Temporal server: for what
the API answers from the database alone, and for counting the SQL statements a request makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.security import create_access_token
from config import Settings
from storage.db import make_engine, make_sessionmaker
from tests.api_stack import JWT_SECRET


@dataclass
class InProcessApi:
    http: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    secret: str
    statements: list[str] = field(default_factory=list)

    def headers(self, username: str) -> dict[str, str]:
        # The roles in the token are not read: the API takes them from the user's row.
        token = create_access_token(self.secret, username, [], timedelta(minutes=5))
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers(user), **kwargs)

    async def counted(self, method: str, path: str, user: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        """The response and the number of SQL statements the request made (its audit writes too)."""
        self.statements.clear()
        response = await self.call(method, path, user, **kwargs)
        return response, len(self.statements)


@asynccontextmanager
async def inprocess_api(database_url: str, temporal: Any = None, **overrides: Any) -> AsyncIterator[InProcessApi]:
    """`temporal` stands in for the Temporal client (None: not connected); `overrides` are settings."""
    settings = Settings(database_url=database_url, jwt_secret=JWT_SECRET, **overrides)
    app = create_app(settings)
    engine = make_engine(database_url)
    # What the app's lifespan sets up, without connecting to Temporal.
    app.state.settings = settings
    app.state.sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
    app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
    app.state.jwt_secret = settings.resolved_jwt_secret()
    app.state.temporal = temporal
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://trlgate.test") as http:
            api = InProcessApi(http, make_sessionmaker(engine), app.state.jwt_secret)

            def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                api.statements.append(statement)

            event.listen(engine.sync_engine, "before_cursor_execute", count)
            yield api
    finally:
        await engine.dispose()
