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
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import jst_date
from storage.ledger.accounts import Account
from storage.models import AccountBalance, LedgerEntry, LedgerTransaction, MinistryYearTotal, utcnow


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


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


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
) -> int:
    """Post a balanced transaction; returns its id. Core statements, not the ORM's unit of work:
    this is the ledger's hot path (see bench/ledger.py)."""
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"unbalanced transaction {business_key}: {legs}")
    legs = [leg for leg in legs if leg.amount != 0]
    txn_id = await session.scalar(
        insert(LedgerTransaction)
        .values(
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
        .returning(LedgerTransaction.id)
    )
    assert txn_id is not None
    # One statement for all the legs: the database checks the sum once the last one is in.
    await session.execute(
        insert(LedgerEntry).values(
            [
                {
                    "transaction_id": txn_id,
                    "account": str(leg.account),
                    "ministry": leg.ministry,
                    "fiscal_year": leg.fiscal_year,
                    "amount": leg.amount,
                }
                for leg in legs
            ]
        )
    )
    # Running balances, incremented atomically (one multi-row upsert, keys in a fixed order so two
    # transactions lock shared rows in the same order), so concurrent postings never lose an update.
    upsert = _insert(session)
    by_account: dict[tuple[Account, int], tuple[str, int]] = {}
    committed: dict[tuple[str, int], int] = defaultdict(int)
    for leg in legs:
        ministry, amount = by_account.get((leg.account, leg.fiscal_year), (leg.ministry, 0))
        by_account[(leg.account, leg.fiscal_year)] = (ministry, amount + leg.amount)
        if leg.account.kind.committed:
            committed[(leg.ministry, leg.fiscal_year)] += leg.amount
    stmt = upsert(AccountBalance).values(
        [
            {"account": str(a), "fiscal_year": fy, "kind": a.kind.value, "ministry": m, "balance": v}
            for (a, fy), (m, v) in sorted(by_account.items(), key=lambda item: (str(item[0][0]), item[0][1]))
        ]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AccountBalance.account, AccountBalance.fiscal_year],
            set_={"balance": AccountBalance.balance + stmt.excluded.balance},
        )
    )
    changed = [{"ministry": m, "fiscal_year": fy, "committed": v} for (m, fy), v in sorted(committed.items()) if v]
    if changed:
        total = upsert(MinistryYearTotal).values(changed)
        await session.execute(
            total.on_conflict_do_update(
                index_elements=[MinistryYearTotal.ministry, MinistryYearTotal.fiscal_year],
                set_={"committed": MinistryYearTotal.committed + total.excluded.committed},
            )
        )
    return txn_id


async def balance(session: AsyncSession, account: Account | str, fy: int | None = None) -> int:
    query = select(func.coalesce(func.sum(AccountBalance.balance), 0)).where(AccountBalance.account == str(account))
    if fy is not None:
        query = query.where(AccountBalance.fiscal_year == fy)
    return int(await session.scalar(query) or 0)
