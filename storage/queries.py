"""Set-based reads for the API's lists: one query per kind of figure for every row of a page,
instead of one per row (the number of queries a list makes must not grow with its length)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import ledger
from storage.models import AccountBalance, Document, Project, Reservation


async def projects_by_id(session: AsyncSession, ids: Collection[str]) -> dict[str, Project]:
    if not ids:
        return {}
    rows = await session.scalars(select(Project).where(Project.id.in_(sorted(ids))))
    return {p.id: p for p in rows.all()}


async def released_by_project(session: AsyncSession, ids: Collection[str]) -> dict[str, int]:
    """Money reserved for each project and given back to the fund (0 for a project with none)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Reservation.project_id, func.coalesce(func.sum(Reservation.released), 0))
        .where(Reservation.project_id.in_(sorted(ids)))
        .group_by(Reservation.project_id)
    )
    found = {pid: int(total or 0) for pid, total in rows.all()}
    return {pid: found.get(pid, 0) for pid in ids}


async def paid_by_project(session: AsyncSession, ids: Collection[str]) -> dict[str, int]:
    """The balance of each project's paid account over every fiscal year (as ledger.balance)."""
    if not ids:
        return {}
    accounts = {ledger.paid_account(pid): pid for pid in ids}
    rows = await session.execute(
        select(AccountBalance.account, func.coalesce(func.sum(AccountBalance.balance), 0))
        .where(AccountBalance.account.in_(sorted(accounts)))
        .group_by(AccountBalance.account)
    )
    found = {accounts[account]: int(total or 0) for account, total in rows.all()}
    return {pid: found.get(pid, 0) for pid in ids}


async def existing_documents(session: AsyncSession, ids: Collection[str]) -> set[str]:
    """Which of these document ids exist."""
    if not ids:
        return set()
    return set((await session.scalars(select(Document.id).where(Document.id.in_(sorted(ids))))).all())
