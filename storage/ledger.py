"""The fund's double-entry ledger.

Accounts (balance = sum of entries; every transaction's entries sum to zero; integer yen):
  endowment            the fund's source; negative by the fund's size
  allocation:<M>       money of funding ministry M not yet reserved (available)
  reservation:<P>      money reserved for project P and not yet paid (two-phase: pending)
  paid:<P>             money paid to project P's performer

Every entry carries a fiscal year (reservation legs: the year the money is planned for; paid legs:
the year it was paid; the others: the year of booking), and `account_balances` keeps a running
balance per (account, fiscal year) in the same transaction. Entries and transactions are
append-only in the database itself (storage/migrations/rules.py); a correction is a reversal.

Every transaction has a unique business key, so a repeat is recognised by the database itself.
The functions here take a session inside a transaction; callers own commit and retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import FiscalYearFunds, fiscal_year, fiscal_years, jst_date
from storage.models import (
    AccountBalance,
    FiscalCeiling,
    FundAllocation,
    LedgerEntry,
    LedgerTransaction,
    MinistryYearTotal,
    PaymentInstruction,
    Programme,
    Project,
    Reservation,
    Tranche,
    utcnow,
)

ENDOWMENT = "endowment"
UNSCHEDULED = 0  # the tranche number of a reservation without a tranche schedule
CLOSED_PROJECT_STATES = ("completed", "terminated")


def allocation_account(ministry: str) -> str:
    return f"allocation:{ministry}"


def reservation_account(project_id: str) -> str:
    return f"reservation:{project_id}"


def paid_account(project_id: str) -> str:
    return f"paid:{project_id}"


class LedgerError(Exception):
    """A business refusal: retrying the same request cannot succeed."""


class InsufficientFunds(LedgerError):
    pass


class IdempotencyConflict(LedgerError):
    """The business key was used before with different parameters."""


class NoOpenReservation(LedgerError):
    pass


class NotReversible(LedgerError):
    pass


def _part_suffix(part: int) -> str:
    """Part 0 is the stage's own budget (keys as first designed); later parts are recycles."""
    return "" if part == 0 else f":p{part}"


def reserve_key(project_id: str, stage_no: int, part: int = 0) -> str:
    return f"reserve:{project_id}:{stage_no}{_part_suffix(part)}"


def pay_key(project_id: str, stage_no: int, tranche_no: int) -> str:
    return f"pay:{project_id}:{stage_no}:{tranche_no}"


@dataclass(frozen=True)
class Leg:
    account: str
    ministry: str
    fiscal_year: int
    amount: int


@dataclass(frozen=True)
class ScheduledAmount:
    """Part of a reservation planned for one tranche, in the fiscal year it falls due."""

    tranche_no: int
    fiscal_year: int
    amount: int


@dataclass(frozen=True)
class ReservationView:
    project_id: str
    stage_no: int
    part: int
    amount: int
    paid: int
    released: int
    status: str
    created: bool


@dataclass(frozen=True)
class TrancheView:
    project_id: str
    stage_no: int
    tranche_no: int
    amount: int
    transaction_id: int
    created: bool
    fiscal_year: int | None = None


@dataclass(frozen=True)
class ReversalView:
    transaction_id: int
    reverses_id: int
    kind: str
    amount: int
    created: bool


def _today() -> date:
    return jst_date(utcnow())


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _post(
    session: AsyncSession,
    business_key: str,
    kind: str,
    project_id: str | None,
    legs: list[Leg],
    booked_on: date,
    *,
    reverses_id: int | None = None,
    memo: str = "",
    actor: str = "system",
) -> int:
    """Post a balanced transaction; returns its id. Core statements, not the ORM's unit of work:
    this is the ledger's hot path (see bench/ledger.py)."""
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"unbalanced transaction {business_key}: {legs}")
    txn_id = await session.scalar(
        insert(LedgerTransaction)
        .values(
            business_key=business_key,
            kind=kind,
            project_id=project_id,
            booked_on=booked_on,
            reverses_id=reverses_id,
            memo=memo,
            actor=actor,
            created_at=utcnow(),
        )
        .returning(LedgerTransaction.id)
    )
    assert txn_id is not None
    legs = [leg for leg in legs if leg.amount != 0]
    await session.execute(
        insert(LedgerEntry).values(
            [
                {
                    "transaction_id": txn_id,
                    "account": leg.account,
                    "ministry": leg.ministry,
                    "fiscal_year": leg.fiscal_year,
                    "amount": leg.amount,
                }
                for leg in legs
            ]
        )
    )
    # Running balances, incremented atomically (one multi-row upsert, keys in a fixed order so two
    # transactions lock shared rows in the same order), so concurrent postings never lose an update.
    upsert = _insert(session)
    by_account: dict[tuple[str, int], tuple[str, int]] = {}
    committed: dict[tuple[str, int], int] = defaultdict(int)
    for leg in legs:
        ministry, amount = by_account.get((leg.account, leg.fiscal_year), (leg.ministry, 0))
        by_account[(leg.account, leg.fiscal_year)] = (ministry, amount + leg.amount)
        if leg.account.split(":", 1)[0] in ("reservation", "paid"):
            committed[(leg.ministry, leg.fiscal_year)] += leg.amount
    stmt = upsert(AccountBalance).values(
        [
            {"account": a, "fiscal_year": fy, "kind": a.split(":", 1)[0], "ministry": m, "balance": v}
            for (a, fy), (m, v) in sorted(by_account.items())
        ]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AccountBalance.account, AccountBalance.fiscal_year],
            set_={"balance": AccountBalance.balance + stmt.excluded.balance},
        )
    )
    changed = [{"ministry": m, "fiscal_year": fy, "committed": v} for (m, fy), v in sorted(committed.items()) if v]
    if changed:
        total = upsert(MinistryYearTotal).values(changed)
        await session.execute(
            total.on_conflict_do_update(
                index_elements=[MinistryYearTotal.ministry, MinistryYearTotal.fiscal_year],
                set_={"committed": MinistryYearTotal.committed + total.excluded.committed},
            )
        )
    return txn_id


async def balance(session: AsyncSession, account: str, fy: int | None = None) -> int:
    query = select(func.coalesce(func.sum(AccountBalance.balance), 0)).where(AccountBalance.account == account)
    if fy is not None:
        query = query.where(AccountBalance.fiscal_year == fy)
    return int(await session.scalar(query) or 0)


async def endow(
    session: AsyncSession, programme_code: str, ministry: str, amount: int, booked_on: date | None = None
) -> bool:
    """Credit a ministry's allocation from the endowment once. Returns False when already done."""
    key = f"endow:{programme_code}:{ministry}"
    if await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.business_key == key)):
        return False
    day = booked_on or _today()
    fy = fiscal_year(day)
    await _post(
        session,
        key,
        "endow",
        None,
        [Leg(ENDOWMENT, ministry, fy, -amount), Leg(allocation_account(ministry), ministry, fy, amount)],
        day,
    )
    return True


def _view(r: Reservation, created: bool) -> ReservationView:
    return ReservationView(r.project_id, r.stage_no, r.part, r.amount, r.paid, r.released, r.status, created)


async def _lock_allocation(session: AsyncSession, programme_code: str, ministry: str) -> FundAllocation:
    # The allocation row is the lock (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises writers), so two reservations can never both spend the same yen.
    allocation = await session.scalar(
        select(FundAllocation)
        .where(FundAllocation.programme_code == programme_code, FundAllocation.ministry == ministry)
        .with_for_update()
    )
    if allocation is None:
        raise LedgerError(f"programme {programme_code} has no allocation for {ministry}")
    return allocation


async def ministry_years(session: AsyncSession, programme_code: str, ministry: str) -> list[FiscalYearFunds]:
    """A ministry's fiscal years as finance reads them (reserved and paid apart)."""
    ceilings = await _ceilings(session, programme_code, ministry)
    sums: dict[str, dict[int, int]] = {"reservation": defaultdict(int), "paid": defaultdict(int)}
    rows = await session.execute(
        select(AccountBalance.kind, AccountBalance.fiscal_year, func.sum(AccountBalance.balance))
        .where(AccountBalance.ministry == ministry, AccountBalance.kind.in_(("reservation", "paid")))
        .group_by(AccountBalance.kind, AccountBalance.fiscal_year)
    )
    for kind, fy, total in rows.all():
        sums[kind][fy] = int(total)
    return fiscal_years({int(k): int(v) for k, v in ceilings.items()}, dict(sums["reservation"]), dict(sums["paid"]))


async def _ceilings(session: AsyncSession, programme_code: str, ministry: str) -> dict[int, int]:
    rows = await session.execute(
        select(FiscalCeiling.fiscal_year, FiscalCeiling.amount).where(
            FiscalCeiling.programme_code == programme_code, FiscalCeiling.ministry == ministry
        )
    )
    return {int(fy): int(amount) for fy, amount in rows.all()}


async def _committed(session: AsyncSession, ministry: str) -> dict[int, int]:
    rows = await session.execute(
        select(MinistryYearTotal.fiscal_year, MinistryYearTotal.committed).where(MinistryYearTotal.ministry == ministry)
    )
    return {int(fy): int(c) for fy, c in rows.all()}


async def _breaches_with(
    session: AsyncSession,
    programme_code: str,
    ministry: str,
    extra: dict[int, int] | None = None,
    ceilings: dict[int, int] | None = None,
) -> list[str]:
    """Ceiling breaches if `extra` were committed (or `ceilings` were in force)."""
    committed = await _committed(session, ministry)
    for fy, v in (extra or {}).items():
        committed[fy] = committed.get(fy, 0) + v
    in_force = await _ceilings(session, programme_code, ministry) if ceilings is None else ceilings
    return _ceiling_breaches(fiscal_years(in_force, committed, {}))


def _ceiling_breaches(years: list[FiscalYearFunds]) -> list[str]:
    return [
        f"FY{y.fiscal_year} ceiling {y.ceiling} + carried over {y.carried_in} < committed {y.committed}"
        for y in years
        if y.available is not None and y.available < 0
    ]


async def reserve(
    session: AsyncSession,
    programme_code: str,
    project_id: str,
    stage_no: int,
    ministry: str,
    amount: int,
    part: int = 0,
    schedule: list[ScheduledAmount] | None = None,
    booked_on: date | None = None,
) -> ReservationView:
    """Reserve a stage's budget (or a recycle's extra budget: `part` > 0) from its ministry's
    allocation, once per (project, stage, part). The schedule says in which fiscal years the money
    is planned to be paid; each of those years must stay within its ceiling (with carry-over)."""
    day = booked_on or _today()
    # Unscheduled (tranche 0): any tranche may draw on it; it is planned for its booking year.
    planned = schedule or [ScheduledAmount(UNSCHEDULED, fiscal_year(day), amount)]
    if amount <= 0 or sum(s.amount for s in planned) != amount or any(s.amount <= 0 for s in planned):
        raise LedgerError(f"the schedule of stage {stage_no} of {project_id} does not add up to {amount} yen")
    existing = await session.get(Reservation, (project_id, stage_no, part))
    if existing is not None:
        if existing.amount != amount or existing.ministry != ministry:
            raise IdempotencyConflict(
                f"stage {stage_no} of {project_id} was reserved with {existing.amount} yen from "
                f"{existing.ministry}, not {amount} yen from {ministry}"
            )
        return _view(existing, created=False)
    await _lock_allocation(session, programme_code, ministry)
    available = await balance(session, allocation_account(ministry))
    if available < amount:
        raise InsufficientFunds(
            f"{ministry} allocation has {available} yen available; stage {stage_no} of {project_id} needs {amount}"
        )
    by_year: dict[int, int] = defaultdict(int)
    for s in planned:
        by_year[s.fiscal_year] += s.amount
    breaches = await _breaches_with(session, programme_code, ministry, extra=dict(by_year))
    if breaches:
        raise InsufficientFunds(
            f"{ministry}: stage {stage_no} of {project_id} ({amount} yen) would exceed a fiscal-year ceiling: "
            + "; ".join(breaches)
        )
    booking_fy = fiscal_year(day)
    await _post(
        session,
        reserve_key(project_id, stage_no, part),
        "reserve",
        project_id,
        [Leg(allocation_account(ministry), ministry, booking_fy, -amount)]
        + [Leg(reservation_account(project_id), ministry, fy, v) for fy, v in sorted(by_year.items())],
        day,
    )
    reservation = Reservation(
        project_id=project_id,
        stage_no=stage_no,
        part=part,
        ministry=ministry,
        amount=amount,
        paid=0,
        released=0,
        status="open",
        schedule=[s.__dict__ for s in planned],
    )
    session.add(reservation)
    await session.flush()
    return _view(reservation, created=True)


def _schedule_of(reservation: Reservation) -> list[dict[str, int]]:
    """The reservation's plan; one from before schedules (migration 0003) is unscheduled in the
    year it was booked, as the migration dated its entries."""
    return reservation.schedule or [
        {
            "tranche_no": UNSCHEDULED,
            "fiscal_year": fiscal_year(jst_date(reservation.created_at)),
            "amount": reservation.amount,
        }
    ]


def _planned_year(reservation: Reservation, tranche_no: int, amount: int | None = None) -> int:
    """The fiscal year the tranche was reserved for; a tranche the schedule does not hold (or
    holds with another amount) is refused. An unscheduled reservation: its one planned year."""
    schedule = _schedule_of(reservation)
    if schedule[0]["tranche_no"] == UNSCHEDULED:
        return int(schedule[0]["fiscal_year"])
    for s in schedule:
        if s["tranche_no"] == tranche_no:
            if amount is not None and s["amount"] != amount:
                raise LedgerError(
                    f"tranche {tranche_no} of stage {reservation.stage_no} of {reservation.project_id} was "
                    f"reserved as {s['amount']} yen, not {amount}"
                )
            return int(s["fiscal_year"])
    raise LedgerError(
        f"stage {reservation.stage_no} of {reservation.project_id} has no tranche {tranche_no} in its schedule"
    )


async def pay_tranche(
    session: AsyncSession,
    project_id: str,
    stage_no: int,
    tranche_no: int,
    amount: int,
    due_at: datetime,
    part: int = 0,
    paid_on: date | None = None,
    payee: str | None = None,
) -> TrancheView:
    """Pay one tranche out of the stage's reservation, and put its payment instruction in the
    outbox in the same transaction. The (project, stage, tranche) key pays once."""
    existing = await session.get(Tranche, (project_id, stage_no, tranche_no))
    if existing is not None:
        if existing.amount != amount:
            raise IdempotencyConflict(
                f"tranche {tranche_no} of stage {stage_no} of {project_id} was paid as {existing.amount} yen, "
                f"not {amount}"
            )
        return TrancheView(
            project_id, stage_no, tranche_no, existing.amount, existing.transaction_id, False, existing.fiscal_year
        )
    day = paid_on or _today()
    actual = fiscal_year(day)
    peek = await session.get(Reservation, (project_id, stage_no, part))
    if peek is not None and peek.status == "open" and _planned_year(peek, tranche_no, amount) != actual:
        # Paid in another fiscal year than planned: the commitment moves to that year, which must
        # stay within its ceiling. The ministry's allocation lock comes first, as in reserve().
        project = await session.get(Project, project_id)
        assert project is not None, f"project {project_id} is not registered"
        await _lock_allocation(session, project.programme_code, peek.ministry)
        planned = _planned_year(peek, tranche_no, amount)
        breaches = await _breaches_with(
            session, project.programme_code, peek.ministry, extra={actual: amount, planned: -amount}
        )
        if breaches:
            raise InsufficientFunds(
                f"{peek.ministry}: tranche {tranche_no} of stage {stage_no} of {project_id} ({amount} yen), planned "
                f"for FY{planned}, would exceed a fiscal-year ceiling if paid in FY{actual}: " + "; ".join(breaches)
            )
    reservation = await session.get(
        Reservation, (project_id, stage_no, part), with_for_update=True, populate_existing=True
    )
    if reservation is None or reservation.status != "open":
        raise NoOpenReservation(f"stage {stage_no} of {project_id} has no open reservation to pay from")
    if reservation.paid + amount > reservation.amount:
        raise LedgerError(
            f"tranche {tranche_no} ({amount} yen) exceeds what remains reserved for stage {stage_no} "
            f"({reservation.amount - reservation.paid} yen)"
        )
    planned = _planned_year(reservation, tranche_no, amount)
    key = pay_key(project_id, stage_no, tranche_no)
    txn_id = await _post(
        session,
        key,
        "pay",
        project_id,
        [
            Leg(reservation_account(project_id), reservation.ministry, planned, -amount),
            Leg(paid_account(project_id), reservation.ministry, actual, amount),
        ],
        day,
    )
    session.add(
        Tranche(
            project_id=project_id,
            stage_no=stage_no,
            tranche_no=tranche_no,
            amount=amount,
            transaction_id=txn_id,
            due_at=due_at,
            part=part,
            fiscal_year=actual,
            planned_fiscal_year=planned,
        )
    )
    if payee is None:
        project = await session.get(Project, project_id)
        payee = project.organisation if project is not None else project_id
    session.add(
        PaymentInstruction(
            key=key,
            transaction_id=txn_id,
            project_id=project_id,
            payee=payee,
            amount=amount,
            kind="pay",
            status="pending",
            attempts=0,
        )
    )
    reservation.paid += amount
    if reservation.paid == reservation.amount:
        reservation.status = "settled"
        reservation.resolved_at = utcnow()
    await session.flush()
    return TrancheView(project_id, stage_no, tranche_no, amount, txn_id, True, actual)


async def _unpaid_by_year(session: AsyncSession, reservation: Reservation) -> dict[int, int]:
    """What the reservation still holds, by the fiscal year it was planned for."""
    rest: dict[int, int] = defaultdict(int)
    for s in _schedule_of(reservation):
        rest[int(s["fiscal_year"])] += int(s["amount"])
    paid = await session.scalars(
        select(Tranche).where(
            Tranche.project_id == reservation.project_id,
            Tranche.stage_no == reservation.stage_no,
            Tranche.part == reservation.part,
            Tranche.reversal_transaction_id.is_(None),
        )
    )
    for t in paid.all():
        rest[
            t.planned_fiscal_year if t.planned_fiscal_year is not None else _planned_year(reservation, t.tranche_no)
        ] -= t.amount
    return {fy: v for fy, v in rest.items() if v}


async def release_open(session: AsyncSession, project_id: str, booked_on: date | None = None) -> int:
    """Release what every open reservation of the project has not paid. Idempotent: returns 0 after."""
    released = 0
    day = booked_on or _today()
    rows = await session.scalars(
        select(Reservation)
        .where(Reservation.project_id == project_id, Reservation.status == "open")
        .order_by(Reservation.stage_no, Reservation.part)
        .with_for_update()
    )
    for reservation in rows.all():
        rest = reservation.amount - reservation.paid
        if rest > 0:
            by_year = await _unpaid_by_year(session, reservation)
            await _post(
                session,
                f"release:{project_id}:{reservation.stage_no}{_part_suffix(reservation.part)}",
                "release",
                project_id,
                [
                    Leg(reservation_account(project_id), reservation.ministry, fy, -v)
                    for fy, v in sorted(by_year.items())
                ]
                + [Leg(allocation_account(reservation.ministry), reservation.ministry, fiscal_year(day), rest)],
                day,
            )
        reservation.released = rest
        reservation.status = "released"
        reservation.resolved_at = utcnow()
        released += rest
    await session.flush()
    return released


async def reverse(
    session: AsyncSession, transaction_id: int, actor: str, memo: str, booked_on: date | None = None
) -> ReversalView:
    """Correct a posting by posting its exact negation (entries are never changed).

    A payment's reversal puts the money back into its reservation (the payment was returned); a
    reservation's reversal undoes one made in error, if nothing was paid from it. Reversing twice
    returns the first reversal."""
    original = await session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotReversible(f"there is no ledger transaction {transaction_id}")
    key = f"reverse:{original.business_key}"
    done = await session.scalar(select(LedgerTransaction).where(LedgerTransaction.business_key == key))
    legs = (await session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == original.id))).all()
    amount = sum(e.amount for e in legs if e.amount > 0)
    if done is not None:
        return ReversalView(done.id, original.id, original.kind, amount, created=False)
    if not memo.strip():
        raise NotReversible("a reversal needs a reason (memo)")
    tranche: Tranche | None = None
    if original.kind == "pay":
        tranche = await session.scalar(select(Tranche).where(Tranche.transaction_id == original.id).with_for_update())
        assert tranche is not None
        reservation = await session.get(
            Reservation, (tranche.project_id, tranche.stage_no, tranche.part), with_for_update=True
        )
        assert reservation is not None
        if reservation.status not in ("open", "settled"):
            raise NotReversible(
                f"the reservation of stage {tranche.stage_no} of {tranche.project_id} is {reservation.status}; "
                "a payment can only go back into a reservation that is still held"
            )
        reservation.paid -= tranche.amount
        reservation.status = "open"
        reservation.resolved_at = None
    elif original.kind == "reserve":
        reservation = await _reservation_of(session, original)
        if reservation is None or reservation.status != "open" or reservation.paid != 0:
            raise NotReversible(f"{original.business_key}: only an open reservation with nothing paid can be reversed")
        reservation.status = "reversed"
        reservation.released = reservation.amount
        reservation.resolved_at = utcnow()
    else:
        raise NotReversible(
            f"{original.business_key}: only payments and reservations can be reversed, not {original.kind}"
        )
    txn_id = await _post(
        session,
        key,
        "reversal",
        original.project_id,
        [Leg(e.account, e.ministry, e.fiscal_year, -e.amount) for e in legs],
        booked_on or _today(),
        reverses_id=original.id,
        memo=memo,
        actor=actor,
    )
    if tranche is not None:
        tranche.reversal_transaction_id = txn_id
    await session.flush()
    return ReversalView(txn_id, original.id, original.kind, amount, created=True)


async def _reservation_of(session: AsyncSession, txn: LedgerTransaction) -> Reservation | None:
    for r in (
        await session.scalars(select(Reservation).where(Reservation.project_id == txn.project_id).with_for_update())
    ).all():
        if reserve_key(r.project_id, r.stage_no, r.part) == txn.business_key:
            return r
    return None


async def set_ceiling(
    session: AsyncSession, programme_code: str, ministry: str, fy: int, amount: int, actor: str
) -> FiscalCeiling:
    """Set (or change) a ministry's ceiling for a fiscal year. Refused if what is already committed
    would exceed it, counting carry-over."""
    if amount < 0:
        raise LedgerError("a ceiling cannot be negative")
    await _lock_allocation(session, programme_code, ministry)
    ceilings = await _ceilings(session, programme_code, ministry)
    ceilings[fy] = amount
    breaches = await _breaches_with(session, programme_code, ministry, ceilings=ceilings)
    if breaches:
        raise InsufficientFunds(
            f"{ministry}: a FY{fy} ceiling of {amount} yen is below what is committed: " + "; ".join(breaches)
        )
    row = await session.get(FiscalCeiling, (programme_code, ministry, fy))
    if row is None:
        row = FiscalCeiling(
            programme_code=programme_code, ministry=ministry, fiscal_year=fy, amount=amount, set_by=actor
        )
        session.add(row)
    else:
        row.amount, row.set_by, row.set_at = amount, actor, utcnow()
    await session.flush()
    return row


# ---- views -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinistryFunds:
    ministry: str
    allocated: int
    reserved: int
    paid: int
    available: int
    fiscal_years: list[FiscalYearFunds] = field(default_factory=list)


async def fund_summary(session: AsyncSession, programme_code: str) -> list[MinistryFunds]:
    allocations = (
        await session.scalars(
            select(FundAllocation)
            .where(FundAllocation.programme_code == programme_code)
            .order_by(FundAllocation.ministry)
        )
    ).all()
    rows = await session.execute(
        select(AccountBalance.kind, AccountBalance.ministry, func.sum(AccountBalance.balance)).group_by(
            AccountBalance.kind, AccountBalance.ministry
        )
    )
    sums = {(kind, ministry): int(total) for kind, ministry, total in rows.all()}
    return [
        MinistryFunds(
            ministry=a.ministry,
            allocated=a.amount,
            reserved=sums.get(("reservation", a.ministry), 0),
            paid=sums.get(("paid", a.ministry), 0),
            available=sums.get(("allocation", a.ministry), 0),
            fiscal_years=await ministry_years(session, programme_code, a.ministry),
        )
        for a in allocations
    ]


@dataclass(frozen=True)
class StatementLine:
    transaction_id: int
    business_key: str
    kind: str
    booked_on: date | None
    recorded_at: datetime
    fiscal_years: list[int]
    reserved_change: int
    paid_change: int
    reserved_balance: int
    paid_balance: int
    memo: str
    reverses_id: int | None


async def statement(session: AsyncSession, project_id: str) -> list[StatementLine]:
    """Every posting that touched the project's accounts, oldest first, with running balances."""
    accounts = (reservation_account(project_id), paid_account(project_id))
    rows = (
        await session.execute(
            select(LedgerTransaction, LedgerEntry)
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(LedgerEntry.account.in_(accounts))
            .order_by(LedgerTransaction.id, LedgerEntry.id)
        )
    ).all()
    lines: list[StatementLine] = []
    reserved = paid = 0
    by_txn: dict[int, tuple[LedgerTransaction, list[LedgerEntry]]] = {}
    for txn, entry in rows:
        by_txn.setdefault(txn.id, (txn, []))[1].append(entry)
    for txn, entries in by_txn.values():
        r = sum(e.amount for e in entries if e.account == accounts[0])
        p = sum(e.amount for e in entries if e.account == accounts[1])
        reserved += r
        paid += p
        lines.append(
            StatementLine(
                txn.id,
                txn.business_key,
                txn.kind,
                txn.booked_on,
                txn.created_at,
                sorted({e.fiscal_year for e in entries}),
                r,
                p,
                reserved,
                paid,
                txn.memo,
                txn.reverses_id,
            )
        )
    return lines


CSV_COLUMNS = (
    "transaction_id",
    "business_key",
    "kind",
    "project_id",
    "booked_on",
    "recorded_at",
    "account",
    "ministry",
    "fiscal_year",
    "amount",
    "reverses_id",
    "actor",
    "memo",
)


async def entry_rows(session: AsyncSession, project_id: str | None = None) -> Iterable[tuple[Any, ...]]:
    """Every ledger entry with its transaction, for finance's CSV export."""
    query = (
        select(LedgerTransaction, LedgerEntry)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .order_by(LedgerTransaction.id, LedgerEntry.id)
    )
    if project_id is not None:
        query = query.where(LedgerTransaction.project_id == project_id)
    return [
        (
            t.id,
            t.business_key,
            t.kind,
            t.project_id or "",
            t.booked_on.isoformat() if t.booked_on else "",
            t.created_at.isoformat(),
            e.account,
            e.ministry,
            e.fiscal_year,
            e.amount,
            t.reverses_id or "",
            t.actor,
            t.memo,
        )
        for t, e in (await session.execute(query)).all()
    ]


async def invariant_violations(session: AsyncSession, programme_code: str) -> list[str]:
    """Every broken ledger rule, in words. Empty means the books are sound:
    entries balance; the running balances equal the entries; no account below zero (in total, and
    for reservation and paid accounts in every fiscal year); paid + reserved + available equals
    each allocation, and the allocations stay within the fund; every fiscal year within its
    ceiling (with carry-over); every reservation resolved exactly once; a closed project holds no
    open reservation."""
    problems: list[str] = []
    unbalanced = (
        await session.execute(
            select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ).all()
    problems += [f"transaction {tid} does not balance ({total})" for tid, total in unbalanced]

    from_entries = {
        (a, fy): int(total)
        for a, fy, total in (
            await session.execute(
                select(LedgerEntry.account, LedgerEntry.fiscal_year, func.sum(LedgerEntry.amount)).group_by(
                    LedgerEntry.account, LedgerEntry.fiscal_year
                )
            )
        ).all()
    }
    running = {(b.account, b.fiscal_year): b.balance for b in (await session.scalars(select(AccountBalance))).all()}
    for key in sorted(set(from_entries) | set(running)):
        if from_entries.get(key, 0) != running.get(key, 0):
            problems.append(
                f"running balance of {key[0]} FY{key[1]} is {running.get(key, 0)} but its entries sum to {from_entries.get(key, 0)}"
            )
    by_ministry_year: dict[tuple[str, int], int] = defaultdict(int)
    for ministry, fy, total in (
        await session.execute(
            select(LedgerEntry.ministry, LedgerEntry.fiscal_year, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.account.like("reservation:%") | LedgerEntry.account.like("paid:%"))
            .group_by(LedgerEntry.ministry, LedgerEntry.fiscal_year)
        )
    ).all():
        by_ministry_year[(ministry, fy)] += int(total)
    kept = {(t.ministry, t.fiscal_year): t.committed for t in (await session.scalars(select(MinistryYearTotal))).all()}
    for ministry_key in sorted(set(by_ministry_year) | set(kept)):
        want, have = by_ministry_year.get(ministry_key, 0), kept.get(ministry_key, 0)
        if want != have:
            problems.append(
                f"{ministry_key[0]} committed to FY{ministry_key[1]} is kept as {have} but the entries sum to {want}"
            )
    totals: dict[str, int] = defaultdict(int)
    for (account, fy), total in from_entries.items():
        totals[account] += total
        if account.split(":", 1)[0] in ("reservation", "paid") and total < 0:
            problems.append(f"account {account} is below zero in FY{fy} ({total})")
    problems += [
        f"account {account} is below zero ({total})"
        for account, total in sorted(totals.items())
        if account != ENDOWMENT and total < 0
    ]

    programme = await session.get(Programme, programme_code)
    summary = await fund_summary(session, programme_code)
    if programme is not None and sum(m.allocated for m in summary) > programme.fund_total:
        problems.append(f"allocations {sum(m.allocated for m in summary)} exceed the fund {programme.fund_total}")
    for m in summary:
        if m.paid + m.reserved + m.available != m.allocated:
            problems.append(
                f"{m.ministry}: paid {m.paid} + reserved {m.reserved} + available {m.available} != allocated {m.allocated}"
            )
        problems += [f"{m.ministry}: {breach}" for breach in _ceiling_breaches(m.fiscal_years)]

    closed = set((await session.scalars(select(Project.id).where(Project.status.in_(CLOSED_PROJECT_STATES)))).all())
    held: dict[str, int] = defaultdict(int)
    for r in (await session.scalars(select(Reservation))).all():
        if r.status == "open":
            held[r.project_id] += r.amount - r.paid
            if r.paid > r.amount:
                problems.append(f"reservation {r.project_id}/{r.stage_no}/{r.part} paid more than it holds")
            if r.project_id in closed:
                problems.append(f"closed project {r.project_id} still holds open reservation {r.stage_no}/{r.part}")
        elif r.paid + r.released != r.amount:
            problems.append(
                f"reservation {r.project_id}/{r.stage_no}/{r.part} closed with {r.amount - r.paid - r.released} unresolved"
            )
    for account, total in totals.items():
        if account.startswith("reservation:") and total and account.split(":", 1)[1] not in held:
            held[account.split(":", 1)[1]] = 0
    for project_id, amount in held.items():
        if totals.get(reservation_account(project_id), 0) != amount:
            problems.append(
                f"project {project_id}: open reservations hold {amount} but its reservation account holds "
                f"{totals.get(reservation_account(project_id), 0)}"
            )
    return problems
