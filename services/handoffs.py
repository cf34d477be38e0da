"""Hand-offs as a user may list them: liaisons their ministry's, programme managers those of their
projects, administration all of them. One rule for the API's GET /handoffs and the liaison's page;
the page's inbox is paged and counted in SQL. Closed projects' hand-offs come only where the user
may read them (storage/access.readable_sql), so the total agrees with the rows; the caller audits them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import has_role
from domain.handoff import HandoffStatus
from domain.proposal import Classification
from domain.roles import Role
from storage.access import readable_page, readable_sql
from storage.models import Handoff, Project, User
from storage.paging import Key, Order, Page


def in_scope(user: User) -> ColumnElement[bool]:
    """Which hand-offs the user's roles reach (over Handoff joined with its Project)."""
    if has_role(user, Role.ADMIN, Role.OPS, Role.FINANCE):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if has_role(user, Role.MINISTRY) and user.ministry:
        conditions.append(Handoff.ministry == user.ministry)
    if has_role(user, Role.PM):
        conditions.append(Project.programme_manager == user.username)
    return or_(*conditions) if conditions else false()


HANDOFFS = Order("handoffs", (Key(Handoff.created_at, datetime, desc=True), Key(Handoff.id, str, desc=True)), rows=True)


def handoffs_query(user: User, status: HandoffStatus | None = None) -> Select[Handoff, str]:
    """The user's hand-offs with their project's classification (before the closed-work rule)."""
    query = (
        select(Handoff, Project.classification).join(Project, Project.id == Handoff.project_id).where(in_scope(user))
    )
    return query.where(Handoff.status == status.value) if status is not None else query


async def handoff_page(
    session: AsyncSession, user: User, status: HandoffStatus | None, cursor: str | None, limit: int
) -> Page[Any]:
    """The API's list: a keyset page of (hand-off, classification), newest first, as the policy
    lets the user read them (storage/access)."""
    query = handoffs_query(user, status)
    return await readable_page(session, user, query, HANDOFFS, cursor, limit)


@dataclass(frozen=True)
class HandoffRow:
    id: str
    project_id: str
    project_title: str
    closed: bool
    ministry: str
    kind: str
    status: HandoffStatus
    created_at: datetime
    deadline_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class HandoffPage:
    rows: list[HandoffRow]
    total: int
    page: int
    pages: int


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


async def handoff_inbox(
    session: AsyncSession, user: User, page: int = 1, per_page: int = 25, now: datetime | None = None
) -> HandoffPage:
    """One page of the user's hand-offs, newest first, with the total counted in SQL."""
    now = now or datetime.now(UTC)
    mine = [in_scope(user), readable_sql(user)]
    base = select(func.count()).select_from(Handoff).join(Project, Project.id == Handoff.project_id)
    total = int(await session.scalar(base.where(*mine)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    found = await session.execute(
        select(Handoff, Project.title, Project.classification)
        .join(Project, Project.id == Handoff.project_id)
        .where(*mine)
        .order_by(*HANDOFFS.order_by())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = []
    for handoff, title, classification in found.all():
        deadline = _utc(handoff.deadline_at)
        pending = HandoffStatus(handoff.status) == HandoffStatus.PENDING
        rows.append(
            HandoffRow(
                id=handoff.id,
                project_id=handoff.project_id,
                project_title=title,
                closed=classification == Classification.CLOSED.value,
                ministry=handoff.ministry,
                kind=handoff.kind,
                status=HandoffStatus(handoff.status),
                created_at=_utc(handoff.created_at) or now,
                deadline_at=deadline,
                overdue=bool(pending and deadline is not None and deadline < now),
            )
        )
    return HandoffPage(rows, total, page, pages)


async def handoffs_of_project(session: AsyncSession, project_id: str) -> list[Handoff]:
    """One project's hand-offs, newest first: a handful per project, never a paged list. The caller
    has authorised the project (its programme manager's page)."""
    found = await session.scalars(
        select(Handoff).where(Handoff.project_id == project_id).order_by(Handoff.created_at.desc(), Handoff.id)
    )
    return list(found.all())
