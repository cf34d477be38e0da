"""The posting engine: one balanced transaction, its entries and the running balances, in one go.

Every entry carries a fiscal year (reservation legs: the year the money is planned for; paid legs:
the year it was paid; the others: the year of booking), and `account_balances` keeps a running
balance per (account, fiscal year) in the same transaction. Entries and transactions are
append-only, and every transaction's entries sum to zero, in the database itself
(storage/migrations/rules.py); a correction is a reversal. Every transaction has a unique
business key, so a repeat is recognised by the database itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ARRAY, func, insert, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from domain.fiscal import jst_date
from storage.db import dialect_insert
from storage.ledger.accounts import Account
from storage.models import AccountBalance, Base, LedgerEntry, LedgerTransaction, MinistryYearTotal, utcnow


class LedgerError(Exception):
    """A business refusal: retrying the same request cannot succeed."""


class InsufficientFunds(LedgerError):
    pass


class IdempotencyConflict(LedgerError):
    """The business key was used before with different parameters."""


class NoOpenReservation(LedgerError):
    pass


class NotReversible(LedgerError):
    pass


@dataclass(frozen=True)
class Leg:
    account: Account
    ministry: str
    fiscal_year: int
    amount: int


def today() -> date:
    return jst_date(utcnow())


async def post(
    session: AsyncSession,
    business_key: str,
    kind: str,
    project_id: str | None,
    legs: list[Leg],
    booked_on: date,
    *,
    reverses_id: int | None = None,
    memo: str = "",
    actor: str = "system",
    linked: Sequence[tuple[type[Base], dict[str, Any]]] = (),
    also: Sequence[UpdateBase] = (),
) -> int:
    """Post a balanced transaction; returns its id. Core statements, not the ORM's unit of work:
    this is the ledger's hot path (see bench/ledger.py). `linked`: rows written with it that
    carry its id (`transaction_id`: a tranche, a payment instruction); `also`: other writes of
    the same command. On PostgreSQL all of it is one statement (data-modifying CTEs: one round
    trip); on SQLite, which has no INSERT in a WITH, one statement each."""
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"unbalanced transaction {business_key}: {legs}")
    legs = [leg for leg in legs if leg.amount != 0]
    header = insert(LedgerTransaction).values(
        business_key=business_key,
        kind=kind,
        project_id=project_id,
        booked_on=booked_on,
        reverses_id=reverses_id,
        memo=memo,
        actor=actor,
        legs=len(legs),
        created_at=utcnow(),
    )
    totals = [*_running_totals(session, legs), *also]
    rows = [
        {"account": str(leg.account), "ministry": leg.ministry, "fiscal_year": leg.fiscal_year, "amount": leg.amount}
        for leg in legs
    ]
    if session.get_bind().dialect.name == "postgresql":
        txn = header.returning(LedgerTransaction.id).cte("txn")
        # The legs as arrays unnested side by side (`_unnested`), not a VALUES list: cacheable.
        legs_in = _unnested(LedgerEntry, rows).cte("legs_in")
        entries = insert(LedgerEntry).from_select(
            ["transaction_id", "account", "ministry", "fiscal_year", "amount"],
            select(txn.c.id, legs_in.c.account, legs_in.c.ministry, legs_in.c.fiscal_year, legs_in.c.amount)
            .select_from(txn)
            .join(legs_in, true()),
        )
        with_id = [
            insert(model).from_select(
                ["transaction_id", *row],
                # Typed as their columns, so each column's own conversions apply (times, statuses).
                select(txn.c.id, *(literal(v, model.__table__.c[k].type) for k, v in row.items())),
            )
            for model, row in linked
        ]
        writes = [entries, *with_id, *totals]
        ctes = [w.cte(f"w{n}") for n, w in enumerate(writes)]
        txn_id = await session.scalar(select(txn.c.id).add_cte(*ctes))
    else:
        txn_id = await session.scalar(header.returning(LedgerTransaction.id))
        # One statement for all the legs: the database checks the sum once the last one is in.
        await session.execute(insert(LedgerEntry).values([{"transaction_id": txn_id, **r} for r in rows]))
        for model, row in linked:
            await session.execute(insert(model).values(transaction_id=txn_id, **row))
        for statement in totals:
            await session.execute(statement)
    assert txn_id is not None
    return int(txn_id)


def _running_totals(session: AsyncSession, legs: list[Leg]) -> list[Any]:
    """The upserts of the running balances (and of each ministry's committed money by year, when
    it changes), incremented atomically, keys in a fixed order so two transactions lock shared
    rows in the same order: concurrent postings never lose an update nor deadlock."""
    upsert = dialect_insert(session)
    by_account: dict[tuple[Account, int], tuple[str, int]] = {}
    committed: dict[tuple[str, int], int] = defaultdict(int)
    for leg in legs:
        ministry, amount = by_account.get((leg.account, leg.fiscal_year), (leg.ministry, 0))
        by_account[(leg.account, leg.fiscal_year)] = (ministry, amount + leg.amount)
        if leg.account.kind.committed:
            committed[(leg.ministry, leg.fiscal_year)] += leg.amount
    balance_rows = [
        {"account": str(a), "fiscal_year": fy, "kind": a.kind.value, "ministry": m, "balance": v}
        for (a, fy), (m, v) in sorted(by_account.items(), key=lambda item: (str(item[0][0]), item[0][1]))
    ]
    balances = _rows_in(session, upsert(AccountBalance), AccountBalance, balance_rows)
    statements = [
        balances.on_conflict_do_update(
            index_elements=[AccountBalance.account, AccountBalance.fiscal_year],
            set_={"balance": AccountBalance.balance + balances.excluded.balance},
        )
    ]
    changed = [{"ministry": m, "fiscal_year": fy, "committed": v} for (m, fy), v in sorted(committed.items()) if v]
    if changed:
        total = _rows_in(session, upsert(MinistryYearTotal), MinistryYearTotal, changed)
        statements.append(
            total.on_conflict_do_update(
                index_elements=[MinistryYearTotal.ministry, MinistryYearTotal.fiscal_year],
                set_={"committed": MinistryYearTotal.committed + total.excluded.committed},
            )
        )
    return statements


def _unnested(model: type[Base], rows: list[dict[str, Any]]) -> Any:
    """Rows as one array per column unnested side by side, in order (PostgreSQL). A statement of
    this shape is the same whatever the number of rows, so SQLAlchemy caches its compiled form; it
    compiles a VALUES list or a multi-row INSERT anew every time, which was most of a posting's
    time in Python (bench/ledger.py, py-spy)."""
    table: Any = model.__table__
    return select(
        *(func.unnest(literal([row[name] for row in rows], ARRAY(table.c[name].type))).label(name) for name in rows[0])
    )


def _rows_in(session: AsyncSession, insert_: Any, model: type[Base], rows: list[dict[str, Any]]) -> Any:
    """`insert_` (the dialect's INSERT of `model`) of these rows: from unnested arrays on
    PostgreSQL, a multi-row VALUES on SQLite (which has no arrays)."""
    if session.get_bind().dialect.name == "postgresql":
        return insert_.from_select(list(rows[0]), _unnested(model, rows))
    return insert_.values(rows)


async def balance(session: AsyncSession, account: Account | str, fy: int | None = None) -> int:
    query = select(func.coalesce(func.sum(AccountBalance.balance), 0)).where(AccountBalance.account == str(account))
    if fy is not None:
        query = query.where(AccountBalance.fiscal_year == fy)
    return int(await session.scalar(query) or 0)
