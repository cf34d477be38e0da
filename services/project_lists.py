"""The API's project lists, keyset-paged with totals (storage/paging): the portfolio with the
pages' filters and sorts (services/portfolio: the same WHERE and order), and the closed-out list
of stopped projects with their reason and lessons. Access is the one policy's SQL
(storage/access); each page carries the query of what it withheld, for the caller's audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from domain.project import ProjectStatus
from services.portfolio import ORDERS, Filters, scope
from storage.access import readable_page
from storage.models import Project, User
from storage.paging import Key, Order, Page

CLOSED_OUT = Order(
    "closed-out", (Key(Project.closed_at, datetime, desc=True, nullable=True), Key(Project.id, str, desc=True))
)


def projects_query(user: User, filters: Filters, now: datetime | None = None) -> Select[Any]:
    """The portfolio's query before the closed-work rule and paging."""
    return select(Project).where(*scope(user, filters, now or datetime.now(UTC)))


async def project_page(
    session: Any, user: User, filters: Filters, cursor: str | None, limit: int, now: datetime | None = None
) -> Page[Project]:
    order = ORDERS[filters.sort]
    return await readable_page(session, user, projects_query(user, filters, now), order, cursor, limit)


def _words(q: str) -> ColumnElement[bool]:
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return func.lower(Project.stop_reason).like(pattern, escape="\\") | func.lower(Project.lessons).like(
        pattern, escape="\\"
    )


def closed_out_query(user: User, q: str | None) -> Select[Any]:
    query = projects_query(user, Filters(status=ProjectStatus.TERMINATED))
    return query.where(_words(q)) if q else query


async def closed_out_page(session: Any, user: User, q: str | None, cursor: str | None, limit: int) -> Page[Project]:
    """Stopped projects, the most recently closed first."""
    return await readable_page(session, user, closed_out_query(user, q), CLOSED_OUT, cursor, limit)
