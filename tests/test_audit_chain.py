"""The audit log is tamper-evident: entries chain by hash in commit order, the database refuses
to change or remove them, and the verify command finds the first broken link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import audit, verify_chain
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def write_entries(sm: async_sessionmaker[AsyncSession], n: int) -> None:
    async def one(i: int) -> None:
        async with sm.begin() as s:
            audit(s, f"user{i}", "test", f"thing:{i}", amount=i, note="日本語も")
            if i % 3 == 0:
                audit(s, f"user{i}", "test-second", f"thing:{i}")

    await asyncio.gather(*(one(i) for i in range(n)))  # concurrent transactions chain in commit order


async def tamper(sm: async_sessionmaker[AsyncSession], statement: str, **params: object) -> None:
    """What someone with the database owner's rights could do: lift the guard, edit, restore it."""
    async with sm.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            await s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            await s.execute(text(statement), params)
            await s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            await s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            await s.execute(text(statement), params)


async def test_concurrent_entries_chain_and_verify(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 12)
    async with sm() as s:
        report = await verify_chain(s)
        count = len((await s.scalars(select(AuditEntry.id))).all())
    assert report.broken_at is None and report.checked == count >= 16


async def test_the_database_refuses_to_change_or_remove_audit_entries(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 2)
    for stmt in (update(AuditEntry).values(outcome="ok"), delete(AuditEntry)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sm.begin() as s:
                await s.execute(stmt)


async def test_a_changed_entry_is_found(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 6)
    async with sm() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    victim = ids[len(ids) // 2]
    await tamper(sm, "UPDATE audit_log SET actor = 'someone-else' WHERE id = :i", i=victim)
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at == victim and "changed after it was written" in report.problem
    assert report.checked == ids.index(victim)


async def test_a_removed_entry_is_found(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 6)
    async with sm() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    await tamper(sm, "DELETE FROM audit_log WHERE id = :i", i=ids[2])
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at == ids[3] and f"does not follow entry {ids[1]}" in report.problem
    await tamper(sm, "DELETE FROM audit_log WHERE id >= :i", i=ids[2])  # cut the tail off instead
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at is not None and "were removed" in report.problem


async def test_the_migration_chains_entries_written_before_it(tmp_path: object) -> None:
    from pathlib import Path

    from storage import migrate

    url = f"sqlite+aiosqlite:///{Path(str(tmp_path)) / 'old.db'}"
    await asyncio.to_thread(migrate.upgrade, url, "0003")
    engine = make_engine(url)
    async with engine.begin() as conn:
        for i in range(3):
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, target, outcome, detail) "
                    "VALUES (:at, 'pm.sato', 'start_project', :t, 'ok', :d)"
                ),
                {"at": f"2026-11-2{i} 10:00:00.000000", "t": f"project:P{i}", "d": json.dumps({"n": i})},
            )
    await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        report = await verify_chain(s)
    await engine.dispose()
    assert report.broken_at is None and report.checked == 3
