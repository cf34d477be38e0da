"""A user's notifications: the unread count, a page of them (newest first, paged and counted in
SQL), and marking them read. Only the user's own rows are ever listed or marked; the API's
/notifications and the workbench's notification centre both call these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification
from storage.paging import Key, Order, Page, keyset

MAX_KEYS = 500


@dataclass(frozen=True)
class NotificationPage:
    rows: list[Notification]
    page: int
    pages: int
    total: int
    unread: int


# Newest first by the workflow's time, then by when stored; the key breaks ties (all descending:
# one index read backwards serves it).
NEWEST = Order(
    "notifications",
    (
        Key(Notification.at, datetime, desc=True),
        Key(Notification.created_at, datetime, desc=True),
        Key(Notification.key, str, desc=True),
    ),
)


def _mine(username: str, unread_only: bool = False) -> ColumnElement[bool]:
    if unread_only:
        return and_(Notification.recipient == username, Notification.read_at.is_(None))
    return Notification.recipient == username


async def unread_count(session: AsyncSession, username: str) -> int:
    """One COUNT query (on the (recipient, read_at) index)."""
    return int(await session.scalar(select(func.count()).select_from(Notification).where(_mine(username, True))) or 0)


async def page(
    session: AsyncSession,
    username: str,
    page: int = 1,
    per_page: int = 25,
    unread_only: bool = False,
    kind: str | None = None,
) -> NotificationPage:
    """One page of the user's notifications, newest first; a page past the end shows the last."""
    where = _mine(username, unread_only)
    if kind is not None:
        where = and_(where, Notification.kind == kind)
    counted = (
        await session.execute(
            select(func.count(), func.count().filter(Notification.read_at.is_(None)))
            .select_from(Notification)
            .where(where)
        )
    ).one()
    total, unread = int(counted[0]), int(counted[1])
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.scalars(
        select(Notification).where(where).order_by(*NEWEST.order_by()).limit(per_page).offset((page - 1) * per_page)
    )
    return NotificationPage(list(rows.all()), page, pages, total, unread)


async def keyset_page(
    session: AsyncSession, username: str, cursor: str | None, limit: int, unread_only: bool, kind: str | None
) -> Page[Notification]:
    """The API's list: a keyset page of the user's own notifications, newest first, with the total."""
    query = select(Notification).where(_mine(username, unread_only))
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return await keyset(session, query, NEWEST, cursor, limit)


async def mark_read(session: AsyncSession, username: str, keys: Iterable[str], now: datetime | None = None) -> int:
    """Mark the user's own notifications among `keys` read; others' keys and unknown keys are
    ignored, and one already read keeps its first read_at (idempotent). Returns how many changed."""
    # No stored key holds NUL (PostgreSQL refuses it in text, even as a parameter): such a key is
    # nobody's, ignored like any unknown key instead of failing the query.
    wanted = sorted({key for key in keys if "\x00" not in key})
    if not wanted:
        return 0
    result = await session.execute(
        update(Notification)
        .where(_mine(username, True), Notification.key.in_(wanted))
        .values(read_at=now or datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_all_read(session: AsyncSession, username: str, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read. Returns how many changed."""
    result = await session.execute(
        update(Notification).where(_mine(username, True)).values(read_at=now or datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0) or 0)
