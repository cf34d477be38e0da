"""The fund ledger's rules, on SQLite and PostgreSQL alike (each test runs once per backend)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.base import DatabaseActivities
from domain.fiscal import fiscal_year, fiscal_years, programme_date, reports_due_before
from domain.programme import PROGRAMME_CODE
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.ledger import ScheduledAmount
from storage.models import (
    FundAllocation,
    LedgerEntry,
    LedgerTransaction,
    PaymentInstruction,
    Programme,
    Reservation,
)
from tests.support import ledger_project

NOW = datetime(2026, 10, 1, tzinfo=UTC)
DAY = date(2026, 10, 1)


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def programme(sm: async_sessionmaker[AsyncSession], allocation: int, projects: int) -> tuple[str, str, list[str]]:
    """A programme of its own (one ministry, `allocation` yen) with `projects` projects, so the
    test's figures are exact whatever else the database holds."""
    ns = uuid.uuid4().hex[:8]
    code, ministry = f"T{ns}", f"M{ns}"
    ids = [f"P{ns}-{i}" for i in range(projects)]
    async with sm.begin() as s:
        s.add(Programme(code=code, name=f"test {ns}", fund_total=allocation))
        await s.flush()
        s.add(FundAllocation(programme_code=code, ministry=ministry, amount=allocation))
        await ledger.endow(s, programme_code=code, ministry=ministry, amount=allocation, booked_on=DAY)
        for pid in ids:
            s.add(ledger_project(pid, code, ministry, allocation))
    return code, ministry, ids


# ---- pure fiscal-year rules ----------------------------------------------------------------------


def test_fiscal_years_run_april_to_march() -> None:
    assert fiscal_year(date(2026, 4, 1)) == 2026
    assert fiscal_year(date(2027, 3, 31)) == 2026
    assert fiscal_year(date(2027, 1, 15)) == 2026
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert programme_date(start, date(2026, 10, 1), start.replace(minute=10), 60.0) == date(2026, 10, 11)
    assert reports_due_before(date(2026, 10, 1), date(2027, 3, 31)) == []
    assert reports_due_before(date(2026, 10, 1), date(2028, 4, 1)) == [2026, 2027]


def test_carry_over_runs_within_consecutive_ceilinged_years() -> None:
    rows = fiscal_years({2026: 100, 2027: 100, 2029: 50}, {2026: 60, 2027: 130, 2028: 999, 2029: 10}, {})
    by = {r.fiscal_year: r for r in rows}
    assert (by[2026].carried_in, by[2026].available) == (0, 40)
    assert (by[2027].carried_in, by[2027].available) == (40, 10)
    assert by[2028].ceiling is None and by[2028].available is None
    assert (by[2029].carried_in, by[2029].available) == (0, 40)  # an unlimited year breaks the run


# ---- append-only ---------------------------------------------------------------------------------


async def test_the_database_refuses_to_change_or_remove_ledger_rows(sm: async_sessionmaker[AsyncSession]) -> None:
    code, ministry, [pid] = await programme(sm, 1000, 1)
    async with sm.begin() as s:
        await ledger.reserve(
            s, programme_code=code, project_id=pid, stage_no=1, ministry=ministry, amount=500, booked_on=DAY
        )
    for stmt in (
        update(LedgerEntry).values(amount=1),
        delete(LedgerEntry),
        update(LedgerTransaction).values(memo="edited"),
        delete(LedgerTransaction),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sm.begin() as s:
                await s.execute(stmt)
    if sm.kw["bind"].dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with sm.begin() as s:
                await s.execute(text("TRUNCATE ledger_entries CASCADE"))
    async with sm() as s:
        assert await ledger.invariant_violations(s, code) == []
        assert await ledger.balance(s, ledger.reservation_account(pid)) == 500


NEW_TXN = text(
    "INSERT INTO ledger_transactions (business_key, kind, created_at, memo, actor, legs) "
    "VALUES (:key, 'endow', '2026-10-01 00:00:00', '', 'raw', :legs)"
)
ENTRY = text(
    "INSERT INTO ledger_entries (transaction_id, account, ministry, fiscal_year, amount) "
    "VALUES ((SELECT id FROM ledger_transactions WHERE business_key = :key), :account, 'MEXT', 2026, :amount)"
)


async def test_the_database_refuses_a_transaction_whose_entries_do_not_sum_to_zero(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    """Raw SQL, as a bad manual fix would write it: PostgreSQL refuses at commit, SQLite as the
    last declared leg goes in (or at the first entry beyond the declared count)."""
    endow_key = await _first_key(sm)
    attempts: list[list[tuple[str, str, int]]] = [
        [("bad-sum", "allocation:MEXT", 100), ("bad-sum", "endowment", -50)],  # two legs, off by 50
        [(endow_key, "allocation:MEXT", 5)],  # one more leg on a balanced transaction
    ]
    for attempt in attempts:
        with pytest.raises(DBAPIError, match="does not balance"):
            async with sm.begin() as s:
                await s.execute(NEW_TXN, {"key": "bad-sum", "legs": 2})
                for key, account, amount in attempt:
                    await s.execute(ENTRY, {"key": key, "account": account, "amount": amount})
    async with sm.begin() as s:  # the same rows, balanced, are accepted: the refusal is the sum
        await s.execute(NEW_TXN, {"key": "good-sum", "legs": 2})
        for account, amount in (("allocation:MEXT", 100), ("endowment", -100)):
            await s.execute(ENTRY, {"key": "good-sum", "account": account, "amount": amount})
    async with sm() as s:
        assert await s.scalar(select(func.count()).where(LedgerTransaction.business_key == "bad-sum")) == 0


async def _first_key(sm: async_sessionmaker[AsyncSession]) -> str:
    async with sm() as s:
        key = await s.scalar(select(LedgerTransaction.business_key).order_by(LedgerTransaction.id).limit(1))
    assert key is not None
    return key


async def test_a_transaction_left_short_of_its_legs_is_found_and_blocks_the_next_on_sqlite(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    """The one case SQLite cannot refuse as it happens (PostgreSQL refuses it at commit)."""
    short = [("allocation:MEXT", 100)]
    if sm.kw["bind"].dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="does not balance"):
            async with sm.begin() as s:
                await s.execute(NEW_TXN, {"key": "short", "legs": 2})
                await s.execute(ENTRY, {"key": "short", "account": short[0][0], "amount": short[0][1]})
        return
    async with sm.begin() as s:
        await s.execute(NEW_TXN, {"key": "short", "legs": 2})
        await s.execute(ENTRY, {"key": "short", "account": short[0][0], "amount": short[0][1]})
    async with sm() as s:
        problems = await ledger.invariant_violations(s, PROGRAMME_CODE)
    assert any("has 1 entries, not its 2" in p for p in problems), problems
    with pytest.raises(DBAPIError, match="missing entries"):
        async with sm.begin() as s:
            await ledger.endow(s, programme_code="X", ministry="MEXT", amount=1, booked_on=DAY)


# ---- reservations, payments, reversals -----------------------------------------------------------


async def test_a_payment_reversal_reopens_the_reservation_and_a_stop_releases_it(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    code, ministry, [pid] = await programme(sm, 1000, 1)
    schedule = [ScheduledAmount(1, 2026, 300), ScheduledAmount(2, 2027, 300)]
    async with sm.begin() as s:
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=pid,
            stage_no=1,
            ministry=ministry,
            amount=600,
            schedule=schedule,
            booked_on=DAY,
        )
        t1 = await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=300, due_at=NOW, paid_on=DAY)
        t2 = await ledger.pay_tranche(
            s, project_id=pid, stage_no=1, tranche_no=2, amount=300, due_at=NOW, paid_on=date(2028, 5, 1)
        )  # late: FY2028
        assert (await s.get(Reservation, (pid, 1, 0))).status == "settled"  # type: ignore[union-attr]
        assert t2.fiscal_year == 2028
        rev = await ledger.reverse(
            s, transaction_id=t1.transaction_id, actor="fin.suzuki", memo="returned by the bank", booked_on=DAY
        )
        again = await ledger.reverse(
            s, transaction_id=t1.transaction_id, actor="fin.suzuki", memo="again", booked_on=DAY
        )
        assert rev.created and not again.created and again.transaction_id == rev.transaction_id
        with pytest.raises(ledger.NotReversible, match="only payments and reservations"):
            await ledger.reverse(
                s, transaction_id=rev.transaction_id, actor="fin.suzuki", memo="undo the undo", booked_on=DAY
            )
        reservation = await s.get(Reservation, (pid, 1, 0))
        assert reservation is not None and (reservation.status, reservation.paid) == ("open", 300)
        assert await ledger.release_open(s, project_id=pid, booked_on=DAY) == 300
        assert await ledger.release_open(s, project_id=pid, booked_on=DAY) == 0
        with pytest.raises(ledger.NotReversible, match="still held"):
            await ledger.reverse(
                s, transaction_id=t2.transaction_id, actor="fin.suzuki", memo="too late", booked_on=DAY
            )
        lines = await ledger.statement(s, pid)
        assert [line.kind for line in lines] == ["reserve", "pay", "pay", "reversal", "release"]
        assert (lines[-1].reserved_balance, lines[-1].paid_balance) == (0, 300)
        assert await ledger.balance(s, ledger.paid_account(pid), 2028) == 300
        assert await ledger.invariant_violations(s, code) == []
        # Each payment left one instruction in the outbox, in the same transaction.
        keys = (await s.scalars(select(PaymentInstruction.key).where(PaymentInstruction.project_id == pid))).all()
        assert sorted(keys) == [f"pay:{pid}:1:1", f"pay:{pid}:1:2"]


async def test_a_reservation_made_in_error_is_reversed_only_while_nothing_is_paid(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    code, ministry, [a, b] = await programme(sm, 1000, 2)
    async with sm.begin() as s:
        await ledger.reserve(
            s, programme_code=code, project_id=a, stage_no=1, ministry=ministry, amount=400, booked_on=DAY
        )
        split = [ScheduledAmount(1, 2026, 100), ScheduledAmount(2, 2027, 300)]
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=b,
            stage_no=1,
            ministry=ministry,
            amount=400,
            schedule=split,
            booked_on=DAY,
        )
        await ledger.pay_tranche(s, project_id=b, stage_no=1, tranche_no=1, amount=100, due_at=NOW, paid_on=DAY)
        with pytest.raises(ledger.LedgerError, match="reserved as 300 yen, not 250"):
            await ledger.pay_tranche(s, project_id=b, stage_no=1, tranche_no=2, amount=250, due_at=NOW, paid_on=DAY)
        with pytest.raises(ledger.LedgerError, match="no tranche 3"):
            await ledger.pay_tranche(s, project_id=b, stage_no=1, tranche_no=3, amount=1, due_at=NOW, paid_on=DAY)
        txn_a, txn_b = (
            await s.scalars(
                select(LedgerTransaction.id)
                .where(LedgerTransaction.kind == "reserve", LedgerTransaction.project_id.in_((a, b)))
                .order_by(LedgerTransaction.project_id)
            )
        ).all()
        with pytest.raises(ledger.NotReversible, match="a reason"):
            await ledger.reverse(s, transaction_id=txn_a, actor="fin.suzuki", memo=" ", booked_on=DAY)
        await ledger.reverse(s, transaction_id=txn_a, actor="fin.suzuki", memo="wrong ministry", booked_on=DAY)
        with pytest.raises(ledger.NotReversible, match="nothing paid"):
            await ledger.reverse(s, transaction_id=txn_b, actor="fin.suzuki", memo="too late", booked_on=DAY)
        assert await ledger.balance(s, ledger.allocation_account(ministry)) == 600
        assert (await s.get(Reservation, (a, 1, 0))).status == "reversed"  # type: ignore[union-attr]
        with pytest.raises(ledger.IdempotencyConflict):
            await ledger.pay_tranche(s, project_id=b, stage_no=1, tranche_no=1, amount=101, due_at=NOW, paid_on=DAY)
        assert await ledger.invariant_violations(s, code) == []


async def test_fiscal_year_ceilings_carry_over_and_refuse_what_exceeds_them(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    code, ministry, [a, b, c] = await programme(sm, 10_000, 3)
    async with sm.begin() as s:
        await ledger.set_ceiling(
            s, programme_code=code, ministry=ministry, fiscal_year=2026, amount=100, actor="fin.suzuki"
        )
        await ledger.set_ceiling(
            s, programme_code=code, ministry=ministry, fiscal_year=2027, amount=100, actor="fin.suzuki"
        )
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=a,
            stage_no=1,
            ministry=ministry,
            amount=60,
            schedule=[ScheduledAmount(1, 2026, 60)],
            booked_on=DAY,
        )
        # FY2027 may take its own 100 plus the 40 FY2026 leaves unused.
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=b,
            stage_no=1,
            ministry=ministry,
            amount=130,
            schedule=[ScheduledAmount(1, 2027, 130)],
            booked_on=DAY,
        )
    with pytest.raises(ledger.InsufficientFunds, match="FY2027 ceiling"):
        async with sm.begin() as s:
            await ledger.reserve(
                s,
                programme_code=code,
                project_id=c,
                stage_no=1,
                ministry=ministry,
                amount=20,
                schedule=[ScheduledAmount(1, 2027, 20)],
                booked_on=DAY,
            )
    with pytest.raises(ledger.InsufficientFunds, match="below what is committed"):
        async with sm.begin() as s:
            await ledger.set_ceiling(
                s, programme_code=code, ministry=ministry, fiscal_year=2026, amount=50, actor="fin.suzuki"
            )
    async with sm.begin() as s:
        # A year without a ceiling only answers to the allocation.
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=c,
            stage_no=1,
            ministry=ministry,
            amount=5000,
            schedule=[ScheduledAmount(1, 2028, 5000)],
            booked_on=DAY,
        )
        [funds] = [m for m in await ledger.fund_summary(s, code) if m.ministry == ministry]
        rows = {y.fiscal_year: (y.ceiling, y.carried_in, y.reserved, y.paid, y.available) for y in funds.fiscal_years}
        assert rows == {2026: (100, 0, 60, 0, 40), 2027: (100, 40, 130, 0, 10), 2028: (None, 0, 5000, 0, None)}
        assert (funds.allocated, funds.reserved, funds.available) == (10_000, 5190, 4810)
        assert await ledger.invariant_violations(s, code) == []


async def test_a_tranche_paid_in_another_fiscal_year_must_fit_that_years_ceiling(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    """Found by the stateful test: paying a tranche outside its planned year moved its commitment
    into a year already at its ceiling. Now the move is checked like a reservation."""
    code, ministry, [a] = await programme(sm, 10_000, 1)
    plan = [ScheduledAmount(1, 2027, 80), ScheduledAmount(2, 2027, 20)]
    async with sm.begin() as s:
        await ledger.set_ceiling(
            s, programme_code=code, ministry=ministry, fiscal_year=2026, amount=50, actor="fin.suzuki"
        )
        await ledger.reserve(
            s,
            programme_code=code,
            project_id=a,
            stage_no=1,
            ministry=ministry,
            amount=100,
            schedule=plan,
            booked_on=DAY,
        )
    with pytest.raises(ledger.InsufficientFunds, match="planned for FY2027, would exceed a fiscal-year ceiling"):
        async with sm.begin() as s:  # 80 early, in FY2026 (ceiling 50): refused, nothing written
            await ledger.pay_tranche(
                s, project_id=a, stage_no=1, tranche_no=1, amount=80, due_at=NOW, paid_on=date(2027, 2, 1)
            )
    async with sm.begin() as s:
        await ledger.pay_tranche(
            s, project_id=a, stage_no=1, tranche_no=2, amount=20, due_at=NOW, paid_on=date(2027, 2, 1)
        )  # 20 fits FY2026's 50
        await ledger.pay_tranche(
            s, project_id=a, stage_no=1, tranche_no=1, amount=80, due_at=NOW, paid_on=date(2027, 6, 1)
        )  # on plan, in FY2027
        assert await ledger.invariant_violations(s, code) == []
        [funds] = [m for m in await ledger.fund_summary(s, code) if m.ministry == ministry]
        rows = {y.fiscal_year: (y.ceiling, y.paid) for y in funds.fiscal_years}
        assert rows == {2026: (50, 20), 2027: (None, 80)}


async def test_fifty_concurrent_reservations_against_room_for_ten(sm: async_sessionmaker[AsyncSession]) -> None:
    """Each in its own transaction, all at once: exactly ten fit, forty are refused as a business
    error (no retry can help them), and the books balance."""
    code, ministry, ids = await programme(sm, 10 * 1_000_000, 50)
    db = DatabaseActivities(sm)

    async def attempt(pid: str) -> str:
        async def work(s: AsyncSession) -> str:
            await ledger.reserve(
                s, programme_code=code, project_id=pid, stage_no=1, ministry=ministry, amount=1_000_000, booked_on=DAY
            )
            return "reserved"

        try:
            return await db.transact(work)
        except Exception as err:
            return type(err).__name__ + ":" + str(getattr(err, "type", ""))

    outcomes = await asyncio.gather(*(attempt(pid) for pid in ids))
    assert outcomes.count("reserved") == 10
    assert outcomes.count("ApplicationError:InsufficientFunds") == 40
    async with sm() as s:
        assert await ledger.balance(s, ledger.allocation_account(ministry)) == 0
        assert (
            await s.scalar(select(func.count()).select_from(Reservation).where(Reservation.project_id.in_(ids))) == 10
        )
        assert await ledger.invariant_violations(s, code) == []


async def test_the_check_finds_running_totals_that_drifted_from_the_entries(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    code, ministry, [pid] = await programme(sm, 1000, 1)
    async with sm.begin() as s:
        await ledger.reserve(
            s, programme_code=code, project_id=pid, stage_no=1, ministry=ministry, amount=400, booked_on=DAY
        )
        assert await ledger.invariant_violations(s, code) == []
    async with sm.begin() as s:  # what a hand-made "fix" of the cached figures would do
        await s.execute(
            text("UPDATE account_balances SET balance = balance + 1 WHERE account = :a"),
            {"a": ledger.reservation_account(pid)},
        )
        await s.execute(
            text("UPDATE ministry_year_totals SET committed = committed - 1 WHERE ministry = :m"), {"m": ministry}
        )
    async with sm() as s:
        problems = " | ".join(await ledger.invariant_violations(s, code))
    assert f"running balance of reservation:{pid} FY2026 is 401 but its entries sum to 400" in problems
    assert f"{ministry} committed to FY2026 is kept as 399 but the entries sum to 400" in problems


async def test_an_unscheduled_reservation_stays_in_the_year_it_was_booked(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    """Booked on a programme date years from today: paying and releasing it use that year too."""
    code, ministry, [pid] = await programme(sm, 1000, 1)
    later = date(2030, 6, 1)
    async with sm.begin() as s:
        await ledger.reserve(
            s, programme_code=code, project_id=pid, stage_no=1, ministry=ministry, amount=900, booked_on=later
        )
        await ledger.pay_tranche(s, project_id=pid, stage_no=1, tranche_no=1, amount=300, due_at=NOW, paid_on=later)
        await ledger.pay_tranche(
            s, project_id=pid, stage_no=1, tranche_no=2, amount=100, due_at=NOW, paid_on=later
        )  # any tranche may draw on it
        assert await ledger.release_open(s, project_id=pid, booked_on=date(2030, 7, 1)) == 500
        assert await ledger.balance(s, ledger.paid_account(pid), 2030) == 400
        assert await ledger.balance(s, ledger.reservation_account(pid)) == 0
        assert await ledger.invariant_violations(s, code) == []


def test_an_account_is_written_and_read_as_the_stored_text() -> None:
    from storage.ledger import Account, AccountError, AccountKind

    for stored, account in [
        ("endowment", ledger.ENDOWMENT_ACCOUNT),
        ("allocation:MEXT", Account.allocation("MEXT")),
        ("reservation:P-1:x", Account.reservation("P-1:x")),
        ("paid:P-1", Account.paid("P-1")),
    ]:
        assert str(account) == stored and Account.parse(stored) == account
    assert ledger.paid_account("P-1") == "paid:P-1" and Account.parse("paid:P-1").kind == AccountKind.PAID
    assert AccountKind.RESERVATION.committed and not AccountKind.ALLOCATION.committed
    for bad in ("cash:X", "paid", "paid:", "endowment:X", ""):
        with pytest.raises(AccountError):
            Account.parse(bad)
