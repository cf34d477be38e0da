"""Migration 0003: users.language and users.session_epoch, down to 0002 and up again, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import inspect, select

from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.models import User
from tests.test_storage import _schema_drift


async def _user_columns(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("users")})
    await engine.dispose()
    return found


async def test_the_user_preferences_migration_goes_down_to_0002_and_up_again(db_url: str) -> None:
    """0003 adds users.language (NULL: follow the browser) and users.session_epoch (0); down to 0002
    removes both and keeps the users; up again restores them with their defaults."""
    assert {"language", "session_epoch"} <= await _user_columns(db_url)
    engine = make_engine(db_url)
    async with make_sessionmaker(engine).begin() as session:
        session.add(User(username="pref.user", full_name="P", password_hash="x", roles=["pm"], language="en"))
    await engine.dispose()
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(db_url), "0002")
    assert not {"language", "session_epoch"} & await _user_columns(db_url)
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert {"language", "session_epoch"} <= await _user_columns(db_url)
    assert await asyncio.to_thread(_schema_drift, db_url) == []
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session:
        user = (await session.scalars(select(User).where(User.username == "pref.user"))).one()
    await engine.dispose()
    assert (user.language, user.session_epoch) == (None, 0)
