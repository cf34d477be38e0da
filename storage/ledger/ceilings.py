"""Fiscal-year ceilings: the most a ministry may commit to each year, with carry-over.

A ministry's allocation row is the lock for everything that commits its money (reservations,
payments moved to another year, a changed ceiling)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import FiscalYearFunds, fiscal_years
from storage.ledger.accounts import AccountKind
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


async def ministry_years(session: AsyncSession, programme_code: str, ministry: str) -> list[FiscalYearFunds]:
    """A ministry's fiscal years as finance reads them (reserved and paid apart)."""
    ceilings = await _ceilings(session, programme_code, ministry)
    sums: dict[str, dict[int, int]] = {AccountKind.RESERVATION: defaultdict(int), AccountKind.PAID: defaultdict(int)}
    rows = await session.execute(
        select(AccountBalance.kind, AccountBalance.fiscal_year, func.sum(AccountBalance.balance))
        .where(
            AccountBalance.ministry == ministry, AccountBalance.kind.in_((AccountKind.RESERVATION, AccountKind.PAID))
        )
        .group_by(AccountBalance.kind, AccountBalance.fiscal_year)
    )
    for kind, fy, total in rows.all():
        sums[kind][fy] = int(total)
    return fiscal_years(
        {int(k): int(v) for k, v in ceilings.items()}, dict(sums[AccountKind.RESERVATION]), dict(sums[AccountKind.PAID])
    )


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


async def breaches_with(
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
    return ceiling_breaches(fiscal_years(in_force, committed, {}))


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
    ceilings = await _ceilings(session, programme_code, ministry)
    ceilings[fiscal_year] = amount
    breaches = await breaches_with(session, programme_code, ministry, ceilings=ceilings)
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
