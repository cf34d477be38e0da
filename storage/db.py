"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def dialect_insert(session: AsyncSession) -> Any:
    """The session's dialect's INSERT, which has ON CONFLICT (both databases spell it alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if not is_sqlite(url):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        if make_url(url).get_driver_name() == "asyncpg":
            # No JIT: every query here is short. A correlated subquery's cost estimate (the access
            # rule's grant check over a national portfolio) crossed jit_above_cost, and compiling
            # the plan took 315 ms of a 390 ms count (bench/portfolio.py).
            kwargs.setdefault("connect_args", {"server_settings": {"jit": "off"}})
        return create_async_engine(url, **kwargs)

    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    # The API and the worker are separate processes writing one SQLite file. Python's sqlite3
    # begins transactions lazily (and deferred), so two writers could both read a fund balance
    # and then both write. SQLAlchemy's documented recipe: take over BEGIN and make it IMMEDIATE,
    # which serialises writers at the start of the transaction.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, 'IMMEDIATE')}")

    return engine


_BEGIN_MODE = "trlgate_sqlite_begin"


_write_locks: dict[int, asyncio.Lock] = {}


def write_lock(sessionmaker: async_sessionmaker[AsyncSession]) -> asyncio.Lock | None:
    """For SQLite, one in-process lock per engine that writers take before BEGIN IMMEDIATE.

    Without it, concurrent writers in one process meet in SQLite's busy handler, which polls with
    sleeps of up to 100 ms; queueing them on an asyncio lock hands the file over at once. Other
    processes (the API beside the worker) still wait in the busy handler, as they must.
    """
    bind = sessionmaker.kw.get("bind")
    if bind is None or not is_sqlite(str(bind.url)):
        return None
    key = id(bind.sync_engine.pool)
    if key not in _write_locks:
        _write_locks[key] = asyncio.Lock()
    return _write_locks[key]


# Where a session finds the audit anchor key (storage/audit.py): every process that writes audit
# entries passes its deployment's key, so entries are anchored whichever process writes them.
AUDIT_KEY_INFO = "trlgate_audit_key"


def make_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False, audit_key: bytes | None = None
) -> async_sessionmaker[AsyncSession]:
    """Writers begin IMMEDIATE on SQLite; read-only sessions begin DEFERRED, which under WAL never
    blocks (nor is blocked by) a writer. PostgreSQL ignores the option."""
    bind = engine.execution_options(**{_BEGIN_MODE: "DEFERRED"}) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, info={AUDIT_KEY_INFO: audit_key} if audit_key else {})
