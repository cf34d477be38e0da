"""Fiscal-year ceilings: the most a ministry may commit to each year, with carry-over.

A ministry's allocation row is the lock for everything that commits its money (reservations,
payments moved to another year, a changed ceiling)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import FiscalYearFunds, fiscal_years
from storage.ledger.accounts import Account
from storage.ledger.posting import InsufficientFunds, LedgerError
from storage.models import AccountBalance, FiscalCeiling, FundAllocation, MinistryYearTotal, utcnow


async def lock_allocation(session: AsyncSession, programme_code: str, ministry: str) -> FundAllocation:
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


async def all_ceilings(session: AsyncSession, programme_code: str) -> dict[str, dict[int, int]]:
    """Every ministry's ceilings by fiscal year."""
    found: dict[str, dict[int, int]] = defaultdict(dict)
    rows = await session.execute(
        select(FiscalCeiling.ministry, FiscalCeiling.fiscal_year, FiscalCeiling.amount).where(
            FiscalCeiling.programme_code == programme_code
        )
    )
    for ministry, fy, amount in rows.all():
        found[ministry][int(fy)] = int(amount)
    return dict(found)


@dataclass(frozen=True)
class Commitments:
    """A ministry's commitments and ceilings by fiscal year, and its allocation's available
    balance: what a reservation checks, read in one statement after the allocation lock."""

    available: int
    committed: dict[int, int]
    ceilings: dict[int, int]


async def commitments(session: AsyncSession, programme_code: str, ministry: str) -> Commitments:
    # One UNION ALL instead of three reads: on the hot path of every reservation, inside the lock.
    available = select(literal("available"), literal(0), func.coalesce(func.sum(AccountBalance.balance), 0)).where(
        AccountBalance.account == str(Account.allocation(ministry))
    )
    committed = select(literal("committed"), MinistryYearTotal.fiscal_year, MinistryYearTotal.committed).where(
        MinistryYearTotal.ministry == ministry
    )
    ceilings = select(literal("ceiling"), FiscalCeiling.fiscal_year, FiscalCeiling.amount).where(
        FiscalCeiling.programme_code == programme_code, FiscalCeiling.ministry == ministry
    )
    found = Commitments(0, {}, {})
    for what, fy, value in (await session.execute(union_all(available, committed, ceilings))).all():
        if what == "available":
            found = Commitments(int(value), found.committed, found.ceilings)
        else:
            (found.committed if what == "committed" else found.ceilings)[int(fy)] = int(value)
    return found


async def breaches_with(
    session: AsyncSession,
    programme_code: str,
    ministry: str,
    extra: dict[int, int] | None = None,
    ceilings: dict[int, int] | None = None,
    known: Commitments | None = None,
) -> list[str]:
    """Ceiling breaches if `extra` were committed (or `ceilings` were in force); `known`: the
    commitments already read under the lock."""
    state = known or await commitments(session, programme_code, ministry)
    committed = dict(state.committed)
    for fy, v in (extra or {}).items():
        committed[fy] = committed.get(fy, 0) + v
    return ceiling_breaches(fiscal_years(state.ceilings if ceilings is None else ceilings, committed, {}))


def ceiling_breaches(years: list[FiscalYearFunds]) -> list[str]:
    return [
        f"FY{y.fiscal_year} ceiling {y.ceiling} + carried over {y.carried_in} < committed {y.committed}"
        for y in years
        if y.available is not None and y.available < 0
    ]


async def set_ceiling(
    session: AsyncSession, *, programme_code: str, ministry: str, fiscal_year: int, amount: int, actor: str
) -> FiscalCeiling:
    """Set (or change) a ministry's ceiling for a fiscal year. Refused if what is already committed
    would exceed it, counting carry-over."""
    if amount < 0:
        raise LedgerError("a ceiling cannot be negative")
    await lock_allocation(session, programme_code, ministry)
    state = await commitments(session, programme_code, ministry)
    breaches = await breaches_with(
        session, programme_code, ministry, ceilings={**state.ceilings, fiscal_year: amount}, known=state
    )
    if breaches:
        raise InsufficientFunds(
            f"{ministry}: a FY{fiscal_year} ceiling of {amount} yen is below what is committed: " + "; ".join(breaches)
        )
    row = await session.get(FiscalCeiling, (programme_code, ministry, fiscal_year))
    if row is None:
        row = FiscalCeiling(
            programme_code=programme_code, ministry=ministry, fiscal_year=fiscal_year, amount=amount, set_by=actor
        )
        session.add(row)
    else:
        row.amount, row.set_by, row.set_at = amount, actor, utcnow()
    await session.flush()
    return row
