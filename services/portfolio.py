"""The portfolio: the projects a user may see, filtered, sorted, paged and totalled in SQL.

Who may see what is narrowed in SQL by the same role rules as storage/access.role_allows (list
membership as a quoted token in the JSON text, which SQLite and PostgreSQL both spell the same),
closed work only where the user holds a grant; the caller then applies the one access policy to
the page's rows (clearance) and audits it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.project import ProjectStatus
from domain.roles import Role
from services.closed_work import readable
from storage.access import SEE_ALL
from storage.models import Gate, Project, User


class Sort(StrEnum):
    NEWEST = "newest"
    TITLE = "title"
    TRL = "trl"
    BUDGET = "budget"


@dataclass(frozen=True)
class Filters:
    status: ProjectStatus | None = None
    stage: int | None = None
    trl: int | None = None
    ministry: str | None = None
    overdue_gates: bool = False
    sort: Sort = Sort.NEWEST


@dataclass(frozen=True)
class PortfolioPage:
    rows: list[Project]
    total: int
    total_budget: int
    page: int
    pages: int


def _listed(column: InstrumentedAttribute[list[Any]], value: str) -> ColumnElement[bool]:
    """`value` is an element of the JSON list in `column` (as a quoted token of its text)."""
    token = '"' + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"'
    return cast(column, String).like(f"%{token}%", escape="\\")


def _reachable(user: User) -> ColumnElement[bool]:
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if Role.PM.value in roles:
        conditions.append(Project.programme_manager == user.username)
    if Role.REVIEWER.value in roles:
        conditions.append(_listed(Project.reviewers, user.username))
    if Role.PERFORMER.value in roles:
        conditions.append(Project.performer == user.username)
    if Role.MINISTRY.value in roles and user.ministry:
        conditions.append(_listed(Project.public_use_ministries, user.ministry))
    return or_(*conditions) if conditions else false()


async def portfolio(
    session: AsyncSession,
    user: User,
    filters: Filters,
    page: int = 1,
    per_page: int = 25,
    now: datetime | None = None,
) -> PortfolioPage:
    now = now or datetime.now(UTC)
    # Closed work held by a grant the clearance no longer covers stays out of the count and the
    # budget total too, not only out of the rows (a total would give its budget away).
    where: list[ColumnElement[bool]] = [_reachable(user), await readable(session, user)]
    if filters.status is not None:
        where.append(Project.status == filters.status.value)
    if filters.stage is not None:
        where.append(Project.stage_no == filters.stage)
    if filters.trl is not None:
        where.append(Project.current_trl == filters.trl)
    if filters.ministry:
        where.append(Project.funding_ministry == filters.ministry)
    if filters.overdue_gates:
        where.append(
            exists().where(
                and_(Gate.project_id == Project.id, Gate.status == "open", Gate.due_at.is_not(None), Gate.due_at < now)
            )
        )
    total, budget = (
        await session.execute(select(func.count(), func.coalesce(func.sum(Project.total_budget), 0)).where(*where))
    ).one()
    pages = max(1, -(-int(total) // per_page))
    page = min(max(1, page), pages)
    order = {
        Sort.NEWEST: (Project.created_at.desc(), Project.id),
        Sort.TITLE: (Project.title, Project.id),
        Sort.TRL: (Project.current_trl.desc(), Project.id),
        Sort.BUDGET: (Project.total_budget.desc(), Project.id),
    }[filters.sort]
    rows = await session.scalars(
        select(Project).where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    )
    return PortfolioPage(list(rows.all()), int(total), int(budget), page, pages)
