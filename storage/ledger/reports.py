"""What finance reads: the fund by ministry and fiscal year, a project's statement, the CSV rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import FiscalYearFunds, fiscal_years
from storage.ledger.accounts import Account, AccountKind
from storage.ledger.ceilings import all_ceilings
from storage.models import AccountBalance, FundAllocation, LedgerEntry, LedgerTransaction, Reservation
from storage.paging import Key, Order, Page, keyset


@dataclass(frozen=True)
class MinistryFunds:
    ministry: str
    allocated: int
    reserved: int
    paid: int
    available: int
    fiscal_years: list[FiscalYearFunds] = field(default_factory=list)


async def fund_summary(session: AsyncSession, programme_code: str) -> list[MinistryFunds]:
    """Every ministry's funds and fiscal years from the running balances in one grouped read (a
    national portfolio holds hundreds of thousands of them: one scan, not one per ministry), with
    the allocations and every ceiling beside it."""
    allocations = (
        await session.scalars(
            select(FundAllocation)
            .where(FundAllocation.programme_code == programme_code)
            .order_by(FundAllocation.ministry)
        )
    ).all()
    rows = await session.execute(
        select(
            AccountBalance.kind, AccountBalance.ministry, AccountBalance.fiscal_year, func.sum(AccountBalance.balance)
        )
        .where(AccountBalance.kind.in_((AccountKind.RESERVATION, AccountKind.PAID, AccountKind.ALLOCATION)))
        .group_by(AccountBalance.kind, AccountBalance.ministry, AccountBalance.fiscal_year)
    )
    sums: dict[tuple[str, str], int] = defaultdict(int)
    by_year: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for kind, ministry, fy, total in rows.all():
        sums[(kind, ministry)] += int(total)
        by_year[(kind, ministry)][int(fy)] = int(total)
    ceilings = await all_ceilings(session, programme_code)
    return [
        MinistryFunds(
            ministry=a.ministry,
            allocated=a.amount,
            reserved=sums[(AccountKind.RESERVATION, a.ministry)],
            paid=sums[(AccountKind.PAID, a.ministry)],
            available=sums[(AccountKind.ALLOCATION, a.ministry)],
            fiscal_years=fiscal_years(
                ceilings.get(a.ministry, {}),
                by_year[(AccountKind.RESERVATION, a.ministry)],
                by_year[(AccountKind.PAID, a.ministry)],
            ),
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
    accounts = (str(Account.reservation(project_id)), str(Account.paid(project_id)))
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


def entries_query(project_id: str | None) -> Select[LedgerEntry, LedgerTransaction]:
    query = select(LedgerEntry, LedgerTransaction).join(
        LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id
    )
    return query.where(LedgerTransaction.project_id == project_id) if project_id is not None else query


def _row(t: LedgerTransaction, e: LedgerEntry) -> tuple[Any, ...]:
    """An entry as CSV_COLUMNS name its fields."""
    return (
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


async def entry_rows(session: AsyncSession, project_id: str | None = None) -> Iterable[tuple[Any, ...]]:
    """Every ledger entry with its transaction, for finance's CSV export."""
    query = entries_query(project_id).order_by(LedgerTransaction.id, LedgerEntry.id)
    return [_row(t, e) for e, t in (await session.execute(query)).all()]


# Entries in the order they were written (an entry's id: its transaction's entries are written
# together, in order).
IN_ORDER = Order("ledger", (Key(LedgerEntry.id, int),), rows=True)


async def entry_page(
    session: AsyncSession, project_id: str | None, cursor: str | None, limit: int
) -> Page[tuple[int, tuple[Any, ...]]]:
    """A keyset page of the ledger (optionally one project's), oldest first: (entry id, the CSV
    row) each, with the total."""
    page = await keyset(session, entries_query(project_id), IN_ORDER, cursor, limit)
    return replace(page, items=[(e.id, _row(t, e)) for e, t in page.items])


async def paid_by_project(session: AsyncSession, project_ids: Iterable[str]) -> dict[str, int]:
    """Each project's paid account, net of reversals (0 for one never paid), in one query."""
    accounts = {str(Account.paid(pid)): pid for pid in set(project_ids)}
    if not accounts:
        return {}
    rows = await session.execute(
        select(AccountBalance.account, func.sum(AccountBalance.balance))
        .where(AccountBalance.account.in_(sorted(accounts)))
        .group_by(AccountBalance.account)
    )
    paid = dict.fromkeys(accounts.values(), 0)
    for account, total in rows.all():
        paid[accounts[account]] = int(total)
    return paid


async def released_by_project(session: AsyncSession, project_ids: Iterable[str]) -> dict[str, int]:
    """What each project's reservations released back to the allocation, in one query."""
    wanted = sorted(set(project_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Reservation.project_id, func.sum(Reservation.released))
        .where(Reservation.project_id.in_(wanted))
        .group_by(Reservation.project_id)
    )
    released = dict.fromkeys(wanted, 0)
    for pid, total in rows.all():
        released[pid] = int(total or 0)
    return released
