"""The SQL each API list runs for a user, compiled for PostgreSQL with its values inlined: what
the portfolio benchmark (bench/) puts under EXPLAIN. Built by the same functions the lists use,
so the plan shown is the plan served."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from api.pseudonyms import Pseudonyms
from services import audit_log, notifications, review_tasks, users_admin
from services.audit_log import AuditFilter
from services.handoffs import HANDOFFS, handoffs_query
from services.portfolio import ORDERS, Filters
from services.project_lists import CLOSED_OUT, closed_out_query, projects_query
from storage.access import readable_sql
from storage.ledger.reports import IN_ORDER, entries_query
from storage.models import Notification, User
from storage.paging import AnySelect, Order, statements

LISTS = ("projects", "closed-out", "tasks", "handoffs", "notifications", "audit", "ledger", "users")


@dataclass(frozen=True)
class ListSql:
    page: str  # the page's query (LIMIT one more than the page)
    count: str  # the total's


async def _query(session: AsyncSession, user: User, name: str, filters: Filters) -> tuple[AnySelect, Order]:
    if name == "projects":
        return projects_query(user, filters).where(readable_sql(user)), ORDERS[filters.sort]
    if name == "closed-out":
        return closed_out_query(user, None).where(readable_sql(user)), CLOSED_OUT
    if name == "tasks":
        return review_tasks.tasks_query(user).where(readable_sql(user)), review_tasks.TASKS
    if name == "handoffs":
        return handoffs_query(user).where(readable_sql(user)), HANDOFFS
    if name == "notifications":
        return select(Notification).where(Notification.recipient == user.username), notifications.NEWEST
    if name == "audit":
        query = await audit_log.log_query(session, user, Pseudonyms({}, set()), AuditFilter())
        assert query is not None  # no project filter: always a query
        return query, audit_log.NEWEST
    if name == "ledger":
        return entries_query(None), IN_ORDER
    if name == "users":
        return select(User), users_admin.BY_USERNAME
    raise ValueError(f"no list {name!r}; one of {', '.join(LISTS)}")


async def list_sql(
    session: AsyncSession,
    user: User,
    name: str,
    filters: Filters | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ListSql:
    """The page and count queries of list `name` (one of LISTS) as `user` asks for it, after
    `cursor` (None: the first page); `filters` apply to the projects list."""
    query, order = await _query(session, user, name, filters or Filters())
    page, count = statements(query, order, order.decode(cursor) if cursor else None, limit)
    dialect = postgresql.dialect()
    inline = {"literal_binds": True}
    return ListSql(
        str(page.compile(dialect=dialect, compile_kwargs=inline)),
        str(count.compile(dialect=dialect, compile_kwargs=inline)),
    )
