"""Keyset pagination: a page of a list ordered by sort keys and a unique id, the count of the
whole filtered set (same WHERE), and an opaque cursor to the next page.

A cursor is urlsafe base64 of JSON: the list's name and the last row's key values. A page never
shifts when rows are added before it (no OFFSET): it starts strictly after the last key shown, so
paging while rows are inserted yields every row present throughout exactly once, in order. A
cursor that does not decode, or whose values do not fit the list's keys, is a CursorError (the
API answers 422 with its reason)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
# A query of any columns (SQLAlchemy's Select is generic in its row's types).
AnySelect = Select[*tuple[Any, ...]]
MAX_LIMIT = 500
MAX_CURSOR = 1024  # characters: a few keys, never a document


class CursorError(ValueError):
    """A cursor that is no cursor of this list (malformed, tampered with, or another list's)."""


@dataclass(frozen=True)
class Key:
    """One sort key: a column (or expression) and its direction. A NULL sorts above every value,
    as PostgreSQL's default has it (last ascending, first descending), on SQLite too: so an index
    on the column, read forwards or backwards, serves the order."""

    column: Any
    kind: type  # int, str or datetime: what a cursor's value must be
    desc: bool = False
    nullable: bool = False

    def ordering(self) -> Any:
        if not self.nullable:
            return self.column.desc() if self.desc else self.column.asc()
        return self.column.desc().nulls_first() if self.desc else self.column.asc().nulls_last()

    def after(self, value: Any) -> ColumnElement[bool]:
        """Rows strictly after `value` in this key's order."""
        if value is None:  # NULLs are last ascending (nothing after), first descending (values after)
            return self.column.is_not(None) if self.desc else false()
        if self.desc:
            return self._known(self.column < value)
        return or_(self.column > value, self.column.is_(None)) if self.nullable else self.column > value

    def equal(self, value: Any) -> ColumnElement[bool]:
        return self.column.is_(None) if value is None else self._known(self.column == value)

    def _known(self, comparison: ColumnElement[bool]) -> ColumnElement[bool]:
        """False, not NULL, where the column is NULL: a page's window is negated (Page.window),
        and NOT NULL would drop the row instead of keeping it."""
        return and_(self.column.is_not(None), comparison) if self.nullable else comparison

    def encode(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        return value

    def decode(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if self.kind is datetime and isinstance(value, str):
            try:
                found = datetime.fromisoformat(value)
            except ValueError:
                raise CursorError("cursor: a date-time key is not ISO 8601") from None
            if found.tzinfo is None:
                raise CursorError("cursor: a date-time key has no UTC offset")
            return found
        if type(value) is not self.kind or (isinstance(value, str) and len(value) > 200):
            raise CursorError(f"cursor: a key is not a {self.kind.__name__}")
        return value


@dataclass(frozen=True)
class Order:
    """A list's total order: its sort keys, the last one unique (the tie-breaker). `name` is in
    every cursor, so a cursor of another list or sort is refused rather than misread. The list's
    query selects the keys' entity (`rows=False`), or rows whose first element it is (`rows=True`,
    e.g. a task with its project's classification)."""

    name: str
    keys: tuple[Key, ...]
    rows: bool = False

    def key_of(self, row: Any) -> list[Any]:
        """A row's key values (read from its entity by the keys' attribute names)."""
        entity = row[0] if self.rows else row
        return [getattr(entity, k.column.key) for k in self.keys]

    def order_by(self) -> list[Any]:
        return [k.ordering() for k in self.keys]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after the row with these key values: (k1 after) or (k1 equal and k2 after)
        or ...; bounded by the first key too, so an index range serves it."""
        clauses: list[ColumnElement[bool]] = []
        equal: list[ColumnElement[bool]] = []
        for key, value in zip(self.keys, values, strict=True):
            clauses.append(and_(*equal, key.after(value)))
            equal.append(key.equal(value))
        first, head = self.keys[0], values[0]
        bound: ColumnElement[bool]
        if head is None:
            bound = true()
        elif first.desc:
            bound = first._known(first.column <= head)
        else:
            bound = or_(first.column >= head, first.column.is_(None)) if first.nullable else first.column >= head
        return and_(bound, or_(*clauses))

    def cursor(self, values: Sequence[Any]) -> str:
        text = json.dumps([self.name, *(k.encode(v) for k, v in zip(self.keys, values, strict=True))])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        if len(cursor) > MAX_CURSOR:
            raise CursorError("cursor: too long")
        try:
            found = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise CursorError("cursor: not a cursor this API gave out") from None
        if not isinstance(found, list) or not found or found[0] != self.name:
            raise CursorError(f"cursor: not a cursor of this list ({self.name})")
        if len(found) != len(self.keys) + 1:
            raise CursorError("cursor: wrong number of keys")
        return [k.decode(v) for k, v in zip(self.keys, found[1:], strict=True)]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    next: str | None
    # Where the page starts (None: the first page) and the key values of its last row, so a
    # caller can ask about the page's key range (api/access audits the closed rows withheld there).
    start: list[Any] | None = None
    last: list[Any] | None = None
    # The ids of closed projects within the page's key range the policy refused (a query), for
    # the list's audit (api/access.audit_listed); set by the list that knows its access rule.
    withheld: AnySelect | None = None

    def window(self, order: Order) -> ColumnElement[bool]:
        """The page's key range: after its start, up to and including its last row (or to the end
        on the last page)."""
        begins = order.after(self.start) if self.start is not None else true()
        ends = ~order.after(self.last) if self.last is not None and self.next is not None else true()
        return and_(begins, ends)


def statements(query: AnySelect, order: Order, start: Sequence[Any] | None, limit: int) -> tuple[AnySelect, AnySelect]:
    """The page's query (one row more than the page, to know whether another follows) and the
    count's, as `keyset` runs them (services/list_sql compiles them for EXPLAIN)."""
    count = select(func.count()).select_from(query.order_by(None).subquery())
    paged = query.order_by(*order.order_by()).limit(limit + 1)
    return (paged.where(order.after(start)) if start is not None else paged), count


async def keyset(
    session: AsyncSession,
    query: AnySelect,
    order: Order,
    cursor: str | None,
    limit: int,
) -> Page[Any]:
    """One page of `query` (its WHERE and joins; no ORDER BY, LIMIT or OFFSET of its own) in
    `order`, after `cursor`. The total counts the whole query."""
    limit = max(1, min(limit, MAX_LIMIT))
    start = order.decode(cursor) if cursor else None
    paged, count = statements(query, order, start, limit)
    total = int(await session.scalar(count) or 0)
    result = await (session.execute(paged) if order.rows else session.scalars(paged))
    rows = list(result.all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = order.key_of(rows[-1]) if rows else None
    return Page(rows, total, order.cursor(last) if more and last else None, start, last)
