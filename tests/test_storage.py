"""Storage and ledger on SQLite and PostgreSQL alike (each test runs once per backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.money import MoneyActivities, PayTrancheInput, ReserveStageInput
from activities.notices import store_notice
from domain.programme import ALLOCATIONS, FUND_TOTAL, PROGRAMME_CODE
from domain.roles import Role, group
from domain.statuses import ReservationStatus
from storage import ledger, migrate
from storage.db import make_engine, make_sessionmaker
from storage.models import LedgerEntry, Notification, Programme, Reservation, Tranche, User
from storage.projects import existing_documents, insert_project, projects_by_id
from storage.seed import DEMO_USERS
from tests.support import proposal

NOW = datetime(2027, 4, 1, tzinfo=UTC)


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def new_project(sm: async_sessionmaker[AsyncSession], **overrides: object) -> str:
    p = proposal(**overrides)
    assert p.project_id is not None
    async with sm.begin() as session:
        assert await insert_project(session, PROGRAMME_CODE, f"project-{p.project_id}", p)
        assert not await insert_project(session, PROGRAMME_CODE, f"project-{p.project_id}", p)
    return p.project_id


async def test_migrated_and_seeded(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as session:
        programme = await session.get(Programme, PROGRAMME_CODE)
        assert programme is not None and programme.fund_total == FUND_TOTAL == 250_000_000_000
        assert await session.scalar(select(func.count()).select_from(User)) == len(DEMO_USERS) == 13
        for ministry, amount in ALLOCATIONS.items():
            assert await ledger.balance(session, ledger.allocation_account(ministry)) == amount
        assert await ledger.balance(session, ledger.ENDOWMENT) == -FUND_TOTAL
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []


async def test_reserve_pay_release_keep_the_books_balanced(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)
    async with sm.begin() as s:
        first = await ledger.reserve(
            s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=900
        )
        again = await ledger.reserve(
            s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=900
        )
        assert first.created and not again.created
        paid = await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=300, due_at=NOW)
        repeat = await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=300, due_at=NOW)
        assert paid.created and not repeat.created and repeat.transaction_id == paid.transaction_id
    async with sm.begin() as s:
        assert await ledger.release_open(s, project_id=pid) == 600
        assert await ledger.release_open(s, project_id=pid) == 0  # a reservation resolves exactly once
    async with sm() as s:
        assert await ledger.balance(s, ledger.reservation_account(pid)) == 0
        assert await ledger.balance(s, ledger.paid_account(pid)) == 300
        mext = {m.ministry: m for m in await ledger.fund_summary(s, PROGRAMME_CODE)}["MEXT"]
        assert (mext.paid, mext.reserved, mext.available) == (300, 0, ALLOCATIONS["MEXT"] - 300)
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []


async def test_same_key_different_amount_is_an_error(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)
    async with sm.begin() as s:
        await ledger.reserve(s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=900)
        await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=300, due_at=NOW)
    with pytest.raises(ledger.IdempotencyConflict, match="not 1000 yen"):
        async with sm.begin() as s:
            await ledger.reserve(
                s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=1000
            )
    with pytest.raises(ledger.IdempotencyConflict, match="paid as 300 yen, not 301"):
        async with sm.begin() as s:
            await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=301, due_at=NOW)
    with pytest.raises(ledger.LedgerError, match="exceeds what remains"):
        async with sm.begin() as s:
            await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=2, amount=601, due_at=NOW)
    with pytest.raises(ledger.NoOpenReservation):
        async with sm.begin() as s:
            await ledger.pay_tranche(s, project_id=pid, stage_no=2, tranche_no=1, amount=1, due_at=NOW)


async def test_insufficient_funds_is_refused(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)
    with pytest.raises(ledger.InsufficientFunds, match="available"):
        async with sm.begin() as s:
            await ledger.reserve(
                s,
                programme_code=PROGRAMME_CODE,
                project_id=pid,
                stage_no=1,
                ministry="METI",
                amount=ALLOCATIONS["METI"] + 1,
            )
    async with sm() as s:
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
        assert (
            await s.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.account.like("reservation:%"))
            )
            == 0
        )


async def test_concurrent_reservations_never_over_commit(sm: async_sessionmaker[AsyncSession]) -> None:
    """20 projects race for an allocation that holds 5 reservations: exactly 5 win."""
    pids = [await new_project(sm, funding_ministry="METI") for _ in range(20)]
    share = ALLOCATIONS["METI"] // 5
    money = MoneyActivities(sm)
    env = ActivityEnvironment()

    async def attempt(pid: str) -> bool:
        try:
            await env.run(
                money.reserve_stage,
                ReserveStageInput(
                    programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="METI", amount=share
                ),
            )
            return True
        except ApplicationError as err:
            assert err.type == "InsufficientFunds" and err.non_retryable
            return False

    results = await asyncio.gather(*(attempt(pid) for pid in pids))
    assert sum(results) == 5
    async with sm() as s:
        assert await ledger.balance(s, ledger.allocation_account("METI")) == 0
        assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []


async def test_the_same_tranche_activity_executed_twice_pays_once(sm: async_sessionmaker[AsyncSession]) -> None:
    pid = await new_project(sm)
    money = MoneyActivities(sm)
    env = ActivityEnvironment()
    await env.run(
        money.reserve_stage,
        ReserveStageInput(programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=1_000),
    )
    tranche = PayTrancheInput(project_id=pid, stage_no=1, tranche_no=1, amount=400, due_at=NOW)
    first = await env.run(money.pay_tranche, tranche)
    second = await env.run(money.pay_tranche, tranche)
    # ... and racing copies, as a retry overlapping a slow first attempt would.
    racing = await asyncio.gather(*(env.run(money.pay_tranche, tranche) for _ in range(5)))
    assert first.created and not second.created and not any(r.created for r in racing)
    assert {r.transaction_id for r in [first, second, *racing]} == {first.transaction_id}
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Tranche).where(Tranche.project_id == pid)) == 1
        assert await ledger.balance(s, ledger.paid_account(pid)) == 400
    with pytest.raises(ApplicationError) as err:
        await env.run(money.pay_tranche, tranche.model_copy(update={"amount": 500}))
    assert err.value.type == "IdempotencyConflict" and err.value.non_retryable


async def test_a_group_address_reaches_each_member_and_a_username_only_its_person(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    """`group:admin` is every administrator; `admin` is the demo user of that name, whom a role of
    the same name must not turn into a group."""
    pid = await new_project(sm)
    async with sm.begin() as session:
        session.add(User(username="admin.two", full_name="Second admin", password_hash="x", roles=["admin"]))
    async with sm.begin() as session:
        assert await store_notice(session, "k-person", pid, "admin", "k", "m", NOW)
        assert await store_notice(session, "k-group", pid, group(Role.ADMIN), "k", "m", NOW)
    async with sm.begin() as session:
        assert not await store_notice(session, "k-group", pid, group(Role.ADMIN), "k", "m", NOW)  # a retry
        rows = (await session.scalars(select(Notification).where(Notification.project_id == pid))).all()
    assert {(n.key, n.recipient) for n in rows} == {
        ("k-person", "admin"),
        ("k-group-admin", "admin"),
        ("k-group-admin.two", "admin.two"),
    }


def _schema_drift(url: str) -> list[object]:
    """What the models declare that the migrated database lacks (or the other way round)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from storage.models import Base

    def declared(_obj: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
        # PostgreSQL's GIN indexes on a JSON list (migration 0008): expression indexes of one
        # database, which the models (shared by both) do not declare.
        return not (type_ == "index" and name is not None and name.endswith("_jsonb"))

    async def compare() -> list[object]:
        engine = create_async_engine(url)
        opts = {"compare_type": True, "include_object": declared}
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts=opts), Base.metadata)
            )
        await engine.dispose()
        return list(diff)

    return asyncio.run(compare())


async def test_the_v1_migration_creates_what_the_models_declare_and_goes_down_and_up_again(db_url: str) -> None:
    assert await asyncio.to_thread(_schema_drift, db_url) == []
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(db_url), "base")
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        left = await conn.run_sync(lambda c: inspect(c).get_table_names())
    await engine.dispose()
    assert left == ["alembic_version"]
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await asyncio.to_thread(_schema_drift, db_url) == []


async def test_the_database_refuses_a_status_its_record_cannot_have(sm: async_sessionmaker[AsyncSession]) -> None:
    """Raw SQL, past the models' enums: each status column is backed by a CHECK constraint."""
    pid = await new_project(sm)
    async with sm.begin() as s:
        await ledger.reserve(s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=9)
    for table in ("projects", "stages", "reservations"):
        column = "id" if table == "projects" else "project_id"
        with pytest.raises(IntegrityError, match=f"ck_{table}_status|CHECK constraint failed"):
            async with sm.begin() as s:
                await s.execute(text(f"UPDATE {table} SET status = 'bogus' WHERE {column} = :pid"), {"pid": pid})
        async with sm.begin() as s:  # a status of its enum is accepted
            await s.execute(
                text(f"UPDATE {table} SET status = :ok WHERE {column} = :pid"),
                {"pid": pid, "ok": "active" if table != "reservations" else "open"},
            )
    async with sm() as s:
        reservation = await s.get(Reservation, (pid, 1, 0))
        assert reservation is not None and reservation.status is ReservationStatus.OPEN  # read back as the enum


async def test_list_helpers_read_every_row_at_once(sm: async_sessionmaker[AsyncSession]) -> None:
    """The set-based reads lists use instead of a query per row give what the per-row reads give."""
    paid_once, never_paid = await new_project(sm), await new_project(sm)
    async with sm.begin() as s:
        for pid in (paid_once, never_paid):
            await ledger.reserve(
                s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=900
            )
        await ledger.pay_tranche(s, project_id=paid_once, stage_no=1, tranche_no=1, amount=300, due_at=NOW)
        for pid in (paid_once, never_paid):
            await ledger.release_open(s, project_id=pid)
    ids = [paid_once, never_paid, "NO-SUCH-PROJECT"]
    async with sm() as s:
        assert await ledger.paid_by_project(s, ids) == {paid_once: 300, never_paid: 0, "NO-SUCH-PROJECT": 0}
        assert await ledger.released_by_project(s, ids) == {paid_once: 600, never_paid: 900, "NO-SUCH-PROJECT": 0}
        assert set(await projects_by_id(s, ids)) == {paid_once, never_paid}
        assert await existing_documents(s, [f"{pid}-closeout" for pid in ids]) == set()
        assert await ledger.paid_by_project(s, []) == {} == await projects_by_id(s, [])


async def test_the_notifications_read_at_migration_goes_down_to_v1_and_up_again(db_url: str) -> None:
    """0002 adds notifications.read_at and the (recipient, read_at) index; down to 0001 removes
    both and keeps the rows; up again restores them (unread)."""

    async def columns_and_indexes() -> tuple[set[str], set[str]]:
        engine = make_engine(db_url)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda c: (
                    {col["name"] for col in inspect(c).get_columns("notifications")},
                    {str(ix["name"]) for ix in inspect(c).get_indexes("notifications")},
                )
            )
        await engine.dispose()
        return found

    columns, indexes = await columns_and_indexes()
    assert "read_at" in columns and "ix_notifications_recipient_read_at" in indexes
    engine = make_engine(db_url)
    pid = await new_project(make_sessionmaker(engine))
    async with make_sessionmaker(engine).begin() as session:
        session.add(Notification(key="k-1", project_id=pid, recipient="rev.ito", kind="reminder", message="m", at=NOW))
        session.add(
            Notification(
                key="k-2", project_id=pid, recipient="rev.ito", kind="reminder", message="m", at=NOW, read_at=NOW
            )
        )
    await engine.dispose()
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(db_url), "0001")
    columns, indexes = await columns_and_indexes()
    assert "read_at" not in columns and "ix_notifications_recipient_read_at" not in indexes
    await asyncio.to_thread(migrate.upgrade, db_url)
    columns, indexes = await columns_and_indexes()
    assert "read_at" in columns and "ix_notifications_recipient_read_at" in indexes
    assert await asyncio.to_thread(_schema_drift, db_url) == []
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session:
        rows = (await session.scalars(select(Notification).where(Notification.project_id == pid))).all()
    await engine.dispose()
    assert {(n.key, n.read_at) for n in rows} == {("k-1", None), ("k-2", None)}


@pytest.mark.postgres
async def test_the_application_s_postgresql_connections_compile_no_plan(postgres_url: str) -> None:
    """JIT is off for the application's connections: its queries are short, and a plan compiled
    for a correlated subquery's inflated cost estimate took most of a list count's time."""
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW jit")) == "off"
    finally:
        await engine.dispose()
