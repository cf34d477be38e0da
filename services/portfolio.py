"""The portfolio: the projects a user may see, filtered, sorted, paged and totalled in SQL.

Who may see what is narrowed in SQL by the one access policy (storage/access: role_scope and
readable); the caller audits the closed work the page shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from domain.handoff import HandoffStatus
from domain.project import ProjectStatus
from domain.roles import FundingMinistry
from storage.access import readable_sql, role_scope
from storage.models import Gate, Handoff, Project, User
from storage.paging import Key, Order


class Sort(StrEnum):
    NEWEST = "newest"
    TITLE = "title"
    TRL = "trl"
    BUDGET = "budget"


# Each sort's total order (the id breaks ties, in the sort's direction, so that one index on
# (column, id) serves it read forwards or backwards): the pages' numbered pages and the API's
# keyset pages (storage/paging) list in the same order.
_ID, _ID_DESC = Key(Project.id, str), Key(Project.id, str, desc=True)
ORDERS = {
    Sort.NEWEST: Order("projects.newest", (Key(Project.created_at, datetime, desc=True), _ID_DESC)),
    Sort.TITLE: Order("projects.title", (Key(Project.title, str), _ID)),
    Sort.TRL: Order("projects.trl", (Key(Project.current_trl, int, desc=True), _ID_DESC)),
    Sort.BUDGET: Order("projects.budget", (Key(Project.total_budget, int, desc=True), _ID_DESC)),
}


# A vision or area filter of 0: the projects that name none (free text from before the registry).
NONE = 0


@dataclass(frozen=True)
class Filters:
    status: ProjectStatus | None = None
    stage: int | None = None
    trl: int | None = None
    ministry: str | None = None
    overdue_gates: bool = False
    sort: Sort = Sort.NEWEST
    vision: int | None = None
    area: int | None = None
    due_gates: bool = False  # an open gate due, not yet overdue
    handoff: HandoffStatus | None = None  # a hand-off in this state
    public_use: bool = False  # completed with public use achieved


@dataclass(frozen=True)
class PortfolioPage:
    rows: list[Project]
    total: int
    total_budget: int
    page: int
    pages: int


def overdue_gate(now: datetime) -> ColumnElement[bool]:
    """The project has an open gate past its due date."""
    return exists().where(
        and_(Gate.project_id == Project.id, Gate.status == "open", Gate.due_at.is_not(None), Gate.due_at < now)
    )


def due_gate(now: datetime) -> ColumnElement[bool]:
    """The project has an open gate with a due date still ahead."""
    return exists().where(
        and_(Gate.project_id == Project.id, Gate.status == "open", Gate.due_at.is_not(None), Gate.due_at >= now)
    )


def handoff_in(state: HandoffStatus) -> ColumnElement[bool]:
    # An alias of its own: inside a query over the hand-offs (services/dashboard) the plain table
    # would correlate with the outer one, leaving the EXISTS no FROM.
    other = aliased(Handoff)
    return exists().where(and_(other.project_id == Project.id, other.status == state.value))


def _named(column: InstrumentedAttribute[int | None], value: int) -> ColumnElement[bool]:
    return column.is_(None) if value == NONE else column == value


async def conditions(session: AsyncSession, user: User, filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE of the portfolio list and of every figure on the dashboard (services/dashboard):
    the same conditions, so a figure and the list behind its link always agree."""
    # Closed work held by a grant the clearance no longer covers stays out of the count and the
    # budget total too, not only out of the rows (a total would give its budget away).
    return [*scope(user, filters, now), readable_sql(user)]


def scope(user: User, filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    """The list's conditions but the closed-work rule: what the user's roles reach, filtered."""
    where: list[ColumnElement[bool]] = [role_scope(user)]
    if filters.status is not None:
        where.append(Project.status == filters.status.value)
    if filters.stage is not None:
        where.append(Project.stage_no == filters.stage)
    if filters.trl is not None:
        where.append(Project.current_trl == filters.trl)
    if filters.ministry:
        where.append(Project.funding_ministry == filters.ministry)
    if filters.vision is not None:
        where.append(_named(Project.vision_id, filters.vision))
    if filters.area is not None:
        where.append(_named(Project.area_id, filters.area))
    if filters.overdue_gates:
        where.append(overdue_gate(now))
    if filters.due_gates:
        where.append(due_gate(now))
    if filters.handoff is not None:
        where.append(handoff_in(filters.handoff))
    if filters.public_use:
        where.append(Project.public_use_achieved.is_(True))
    return where


async def portfolio(
    session: AsyncSession,
    user: User,
    filters: Filters,
    page: int = 1,
    per_page: int = 25,
    now: datetime | None = None,
) -> PortfolioPage:
    now = now or datetime.now(UTC)
    where = await conditions(session, user, filters, now)
    total, budget = (
        await session.execute(select(func.count(), func.coalesce(func.sum(Project.total_budget), 0)).where(*where))
    ).one()
    pages = max(1, -(-int(total) // per_page))
    page = min(max(1, page), pages)
    order = ORDERS[filters.sort].order_by()
    rows = await session.scalars(
        select(Project).where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    )
    return PortfolioPage(list(rows.all()), int(total), int(budget), page, pages)


def _int_or_none(value: str | None, low: int, high: int) -> int | None:
    """An empty select means "any"; anything else out of range is "any" too (a filter never fails)."""
    return int(value) if value and value.isascii() and value.isdigit() and low <= int(value) <= high else None


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of a page's address (the portfolio list, the dashboard), leniently: what is
    not a filter's value means "any"."""
    status, sort, handoff, ministry = (params.get(k) for k in ("status", "sort", "handoff", "ministry"))
    return Filters(
        status=ProjectStatus(status) if status in set(ProjectStatus) else None,
        stage=_int_or_none(params.get("stage"), 1, 10),
        trl=_int_or_none(params.get("trl"), 1, 9),
        ministry=ministry if ministry in set(FundingMinistry) else None,
        overdue_gates=params.get("overdue") == "1",
        sort=Sort(sort) if sort in set(Sort) else Sort.NEWEST,
        vision=_int_or_none(params.get("vision"), NONE, 2**31 - 1),
        area=_int_or_none(params.get("area"), NONE, 2**31 - 1),
        due_gates=params.get("due") == "1",
        handoff=HandoffStatus(handoff) if handoff in set(HandoffStatus) else None,
        public_use=params.get("public_use") == "1",
    )


def query_of(filters: Filters, **changes: Any) -> dict[str, str]:
    """The address parameters of these filters (with `changes`), the ones set only: what
    parse_filters reads back as the same filters."""
    f = replace(filters, **changes)
    values = {
        "status": str(f.status) if f.status else None,  # an enum member or its value
        "stage": f.stage,
        "trl": f.trl,
        "ministry": f.ministry,
        "vision": f.vision,
        "area": f.area,
        "overdue": "1" if f.overdue_gates else None,
        "due": "1" if f.due_gates else None,
        "handoff": str(f.handoff) if f.handoff else None,
        "public_use": "1" if f.public_use else None,
        "sort": str(f.sort) if f.sort != Sort.NEWEST else None,
    }
    return {k: str(v) for k, v in values.items() if v is not None}
