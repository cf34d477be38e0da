"""The fund's double-entry ledger.

Accounts (balance = sum of entries, every transaction's entries sum to zero):
  endowment            the fund's source; negative by the fund's size
  allocation:<M>       money of funding ministry M not yet reserved (available)
  reservation:<P>      money reserved for project P and not yet paid
  paid:<P>             money paid to project P's performer

Every transaction has a unique business key, so a repeat is recognised by the database itself.
The functions here take a session inside a transaction; callers own commit and retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FundAllocation, LedgerEntry, LedgerTransaction, Reservation, Tranche, utcnow

ENDOWMENT = "endowment"


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


def _part_suffix(part: int) -> str:
    """Part 0 is the stage's own budget (keys as first designed); later parts are recycles."""
    return "" if part == 0 else f":p{part}"


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


async def _post(
    session: AsyncSession,
    business_key: str,
    kind: str,
    project_id: str | None,
    legs: list[tuple[str, str, int]],
) -> LedgerTransaction:
    if sum(amount for _, _, amount in legs) != 0:
        raise ValueError(f"unbalanced transaction {business_key}: {legs}")
    txn = LedgerTransaction(business_key=business_key, kind=kind, project_id=project_id)
    session.add(txn)
    await session.flush()
    session.add_all(
        LedgerEntry(transaction_id=txn.id, account=account, ministry=ministry, amount=amount)
        for account, ministry, amount in legs
    )
    await session.flush()
    return txn


async def balance(session: AsyncSession, account: str) -> int:
    result = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account == account)
    )
    return int(result or 0)


async def endow(session: AsyncSession, programme_code: str, ministry: str, amount: int) -> bool:
    """Credit a ministry's allocation from the endowment once. Returns False when already done."""
    key = f"endow:{programme_code}:{ministry}"
    if await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.business_key == key)):
        return False
    await _post(
        session,
        key,
        "endow",
        None,
        [(ENDOWMENT, ministry, -amount), (allocation_account(ministry), ministry, amount)],
    )
    return True


def _view(r: Reservation, created: bool) -> ReservationView:
    return ReservationView(r.project_id, r.stage_no, r.part, r.amount, r.paid, r.released, r.status, created)


async def reserve(
    session: AsyncSession,
    programme_code: str,
    project_id: str,
    stage_no: int,
    ministry: str,
    amount: int,
    part: int = 0,
) -> ReservationView:
    """Reserve a stage's budget (or a recycle's extra budget: `part` > 0) from its ministry's
    allocation, once per (project, stage, part)."""
    existing = await session.get(Reservation, (project_id, stage_no, part))
    if existing is not None:
        if existing.amount != amount or existing.ministry != ministry:
            raise IdempotencyConflict(
                f"stage {stage_no} of {project_id} was reserved with {existing.amount} yen from "
                f"{existing.ministry}, not {amount} yen from {ministry}"
            )
        return _view(existing, created=False)
    # The allocation row is the lock (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises writers), so two reservations can never both spend the same yen.
    allocation = await session.scalar(
        select(FundAllocation)
        .where(FundAllocation.programme_code == programme_code, FundAllocation.ministry == ministry)
        .with_for_update()
    )
    if allocation is None:
        raise LedgerError(f"programme {programme_code} has no allocation for {ministry}")
    available = await balance(session, allocation_account(ministry))
    if available < amount:
        raise InsufficientFunds(
            f"{ministry} allocation has {available} yen available; stage {stage_no} of {project_id} needs {amount}"
        )
    await _post(
        session,
        f"reserve:{project_id}:{stage_no}{_part_suffix(part)}",
        "reserve",
        project_id,
        [
            (allocation_account(ministry), ministry, -amount),
            (reservation_account(project_id), ministry, amount),
        ],
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
    )
    session.add(reservation)
    await session.flush()
    return _view(reservation, created=True)


async def pay_tranche(
    session: AsyncSession,
    project_id: str,
    stage_no: int,
    tranche_no: int,
    amount: int,
    due_at: datetime,
    part: int = 0,
) -> TrancheView:
    """Pay one tranche out of the stage's reservation. The (project, stage, tranche) key pays once."""
    existing = await session.get(Tranche, (project_id, stage_no, tranche_no))
    if existing is not None:
        if existing.amount != amount:
            raise IdempotencyConflict(
                f"tranche {tranche_no} of stage {stage_no} of {project_id} was paid as {existing.amount} yen, "
                f"not {amount}"
            )
        return TrancheView(project_id, stage_no, tranche_no, existing.amount, existing.transaction_id, created=False)
    reservation = await session.get(Reservation, (project_id, stage_no, part), with_for_update=True)
    if reservation is None or reservation.status != "open":
        raise NoOpenReservation(f"stage {stage_no} of {project_id} has no open reservation to pay from")
    if reservation.paid + amount > reservation.amount:
        raise LedgerError(
            f"tranche {tranche_no} ({amount} yen) exceeds what remains reserved for stage {stage_no} "
            f"({reservation.amount - reservation.paid} yen)"
        )
    txn = await _post(
        session,
        f"pay:{project_id}:{stage_no}:{tranche_no}",
        "pay",
        project_id,
        [
            (reservation_account(project_id), reservation.ministry, -amount),
            (paid_account(project_id), reservation.ministry, amount),
        ],
    )
    session.add(
        Tranche(
            project_id=project_id,
            stage_no=stage_no,
            tranche_no=tranche_no,
            amount=amount,
            transaction_id=txn.id,
            due_at=due_at,
        )
    )
    reservation.paid += amount
    if reservation.paid == reservation.amount:
        reservation.status = "settled"
        reservation.resolved_at = utcnow()
    await session.flush()
    return TrancheView(project_id, stage_no, tranche_no, amount, txn.id, created=True)


async def release_open(session: AsyncSession, project_id: str) -> int:
    """Release what every open reservation of the project has not paid. Idempotent: returns 0 after."""
    released = 0
    rows = await session.scalars(
        select(Reservation)
        .where(Reservation.project_id == project_id, Reservation.status == "open")
        .order_by(Reservation.stage_no, Reservation.part)
        .with_for_update()
    )
    for reservation in rows.all():
        rest = reservation.amount - reservation.paid
        if rest > 0:
            await _post(
                session,
                f"release:{project_id}:{reservation.stage_no}{_part_suffix(reservation.part)}",
                "release",
                project_id,
                [
                    (reservation_account(project_id), reservation.ministry, -rest),
                    (allocation_account(reservation.ministry), reservation.ministry, rest),
                ],
            )
        reservation.released = rest
        reservation.status = "released"
        reservation.resolved_at = utcnow()
        released += rest
    await session.flush()
    return released


@dataclass(frozen=True)
class MinistryFunds:
    ministry: str
    allocated: int
    reserved: int
    paid: int
    available: int


async def fund_summary(session: AsyncSession, programme_code: str) -> list[MinistryFunds]:
    allocations = (
        await session.scalars(
            select(FundAllocation)
            .where(FundAllocation.programme_code == programme_code)
            .order_by(FundAllocation.ministry)
        )
    ).all()
    rows = await session.execute(
        select(LedgerEntry.account, LedgerEntry.ministry, func.sum(LedgerEntry.amount)).group_by(
            LedgerEntry.account, LedgerEntry.ministry
        )
    )
    sums = {(account, ministry): int(total) for account, ministry, total in rows.all()}
    out: list[MinistryFunds] = []
    for a in allocations:
        by_kind = {"reservation": 0, "paid": 0}
        for (account, ministry), total in sums.items():
            kind = account.split(":", 1)[0]
            if ministry == a.ministry and kind in by_kind:
                by_kind[kind] += total
        out.append(
            MinistryFunds(
                ministry=a.ministry,
                allocated=a.amount,
                reserved=by_kind["reservation"],
                paid=by_kind["paid"],
                available=sums.get((allocation_account(a.ministry), a.ministry), 0),
            )
        )
    return out


async def invariant_violations(session: AsyncSession, programme_code: str) -> list[str]:
    """Every broken ledger rule, in words. Empty means the books are sound."""
    problems: list[str] = []
    unbalanced = (
        await session.execute(
            select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ).all()
    problems += [f"transaction {tid} does not balance ({total})" for tid, total in unbalanced]
    negative = (
        await session.execute(
            select(LedgerEntry.account, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.account != ENDOWMENT)
            .group_by(LedgerEntry.account)
            .having(func.sum(LedgerEntry.amount) < 0)
        )
    ).all()
    problems += [f"account {account} is below zero ({total})" for account, total in negative]
    for m in await fund_summary(session, programme_code):
        if m.paid + m.reserved + m.available != m.allocated:
            problems.append(
                f"{m.ministry}: paid {m.paid} + reserved {m.reserved} + available {m.available} != allocated {m.allocated}"
            )
    for r in (await session.scalars(select(Reservation))).all():
        if r.status == "open" and r.paid + r.released > r.amount:
            problems.append(f"reservation {r.project_id}/{r.stage_no}/{r.part} resolves more than it holds")
        if r.status != "open" and r.paid + r.released != r.amount:
            problems.append(
                f"reservation {r.project_id}/{r.stage_no}/{r.part} closed with {r.amount - r.paid - r.released} unresolved"
            )
        held = await balance(session, reservation_account(r.project_id))
        if held < 0:
            problems.append(f"project {r.project_id} reservation account is negative")
    return problems
