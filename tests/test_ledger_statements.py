"""How many SQL statements the ledger's hot commands issue, on SQLite and PostgreSQL: the count is
their cost under load (bench/ledger.py), so it must not creep back up. And the lock that prevents
over-commitment is still taken (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine.default import CacheStats
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.programme import PROGRAMME_CODE
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.ledger import ScheduledAmount
from storage.models import Reservation
from tests.support import ledger_project

DAY = date(2026, 6, 1)
# Both were 10. PostgreSQL: the lock (read with the key's earlier row), the checks' read, then every
# write in one statement. SQLite (no INSERT in a WITH): the posting's writes one statement each.
RESERVE_STATEMENTS = {"postgresql": 3, "sqlite": 7}
PAY_STATEMENTS = {"postgresql": 2, "sqlite": 7}


@pytest.fixture
async def counted(db_url: str) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], list[str]]]:
    engine = make_engine(db_url)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # BEGIN IMMEDIATE (SQLite) is the transaction itself, not the command's work.
        if not statement.lstrip().upper().startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    yield make_sessionmaker(engine), statements
    await engine.dispose()


async def test_a_reservation_and_a_payment_take_few_statements(
    counted: tuple[async_sessionmaker[AsyncSession], list[str]],
) -> None:
    sm, statements = counted
    async with sm.begin() as s:
        s.add(ledger_project("PSTMT-1", PROGRAMME_CODE, "MEXT", 1_000))
    statements.clear()
    async with sm.begin() as s:
        view = await ledger.reserve(
            s,
            programme_code=PROGRAMME_CODE,
            project_id="PSTMT-1",
            stage_no=1,
            ministry="MEXT",
            amount=1_000,
            schedule=[ScheduledAmount(1, 2026, 600), ScheduledAmount(2, 2027, 400)],
            booked_on=DAY,
        )
    dialect = sm.kw["bind"].dialect.name
    postgres = dialect == "postgresql"
    assert view.created and len(statements) == RESERVE_STATEMENTS[dialect], statements
    assert ("FOR UPDATE OF fund_allocations" in statements[0]) == postgres, statements[0]

    statements.clear()
    async with sm.begin() as s:
        loaded = await s.get(Reservation, ("PSTMT-1", 1, 0))  # a copy in the session before the payment
        statements.clear()
        paid = await ledger.pay_tranche(
            s,
            project_id="PSTMT-1",
            stage_no=1,
            tranche_no=1,
            amount=600,
            due_at=datetime(2026, 6, 1, tzinfo=UTC),
            paid_on=DAY,
        )
        assert paid.created and len(statements) == PAY_STATEMENTS[dialect], statements
        assert ("FOR UPDATE OF reservations" in statements[0]) == postgres, statements[0]
        assert loaded is not None and loaded.paid == 600  # the Core update does not leave it stale
    async with sm.begin() as s:
        assert (await s.get(Reservation, ("PSTMT-1", 1, 0))).paid == 600  # type: ignore[union-attr]
        again = await ledger.pay_tranche(
            s, project_id="PSTMT-1", stage_no=1, tranche_no=1, amount=600, due_at=datetime(2026, 6, 1, tzinfo=UTC)
        )
        assert not again.created and again.transaction_id == paid.transaction_id
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []


async def test_the_hot_statements_are_compiled_once_not_for_every_command(db_url: str) -> None:
    """SQLAlchemy caches a statement's compiled form unless it holds VALUES data or a multi-row
    INSERT: those were compiled again for every posting, most of a reservation's time in Python.
    On PostgreSQL every statement of a second reservation and payment comes from the cache."""
    engine = make_engine(db_url)
    misses: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        begin = statement.lstrip().upper().startswith("BEGIN")  # SQLite's BEGIN IMMEDIATE: raw SQL
        if not begin and context.cache_hit not in (CacheStats.CACHE_HIT, CacheStats.CACHE_MISS):
            misses.append(f"{context.cache_hit.name}: {statement[:80]}")

    sm = make_sessionmaker(engine)
    try:
        async with sm.begin() as s:
            s.add_all(ledger_project(f"PCACHE-{i}", PROGRAMME_CODE, "MEXT", 1_000) for i in range(2))
        for i in range(2):
            if i == 1:
                event.listen(engine.sync_engine, "after_cursor_execute", watch)
            async with sm.begin() as s:
                await ledger.reserve(
                    s,
                    programme_code=PROGRAMME_CODE,
                    project_id=f"PCACHE-{i}",
                    stage_no=1,
                    ministry="MEXT",
                    amount=1_000,
                    schedule=[ScheduledAmount(1, 2026, 600), ScheduledAmount(2, 2027, 400)],
                    booked_on=DAY,
                )
            async with sm.begin() as s:
                await ledger.pay_tranche(
                    s,
                    project_id=f"PCACHE-{i}",
                    stage_no=1,
                    tranche_no=1,
                    amount=600,
                    due_at=datetime(2026, 6, 1, tzinfo=UTC),
                    paid_on=DAY,
                )
        if engine.dialect.name == "postgresql":
            assert misses == []
        else:  # SQLite has no arrays: its multi-row INSERTs stay uncached (it runs one writer anyway)
            assert all("INSERT" in m for m in misses), misses
    finally:
        await engine.dispose()
