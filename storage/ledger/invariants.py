"""The ledger's invariants: every rule the books must keep, checked from the entries up.

A full scan (every entry, balance and reservation): run by `trlgate fund-check` and the scheduled
fund check (workflows/fund_check.py), which record what they found (storage/fund_checks.py)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.project import ProjectStatus
from storage.ledger.accounts import ENDOWMENT, Account, AccountKind
from storage.ledger.ceilings import ceiling_breaches
from storage.ledger.reports import fund_summary
from storage.models import (
    AccountBalance,
    LedgerEntry,
    LedgerTransaction,
    MinistryYearTotal,
    Programme,
    Project,
    Reservation,
)


async def invariant_violations(session: AsyncSession, programme_code: str) -> list[str]:
    """Every broken ledger rule, in words. Empty means the books are sound:
    entries balance; the running balances equal the entries; no account below zero (in total, and
    for reservation and paid accounts in every fiscal year); paid + reserved + available equals
    each allocation, and the allocations stay within the fund; every fiscal year within its
    ceiling (with carry-over); every reservation resolved exactly once; a closed project holds no
    open reservation."""
    problems: list[str] = []
    unbalanced = (
        await session.execute(
            select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ).all()
    problems += [f"transaction {tid} does not balance ({total})" for tid, total in unbalanced]
    short = (
        await session.execute(
            select(LedgerTransaction.id, LedgerTransaction.legs, func.count(LedgerEntry.id))
            .outerjoin(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .group_by(LedgerTransaction.id, LedgerTransaction.legs)
            .having(func.count(LedgerEntry.id) != LedgerTransaction.legs)
        )
    ).all()
    problems += [f"transaction {tid} has {n} entries, not its {legs}" for tid, legs, n in short]

    from_entries = {
        (a, fy): int(total)
        for a, fy, total in (
            await session.execute(
                select(LedgerEntry.account, LedgerEntry.fiscal_year, func.sum(LedgerEntry.amount)).group_by(
                    LedgerEntry.account, LedgerEntry.fiscal_year
                )
            )
        ).all()
    }
    running = {(b.account, b.fiscal_year): b.balance for b in (await session.scalars(select(AccountBalance))).all()}
    for key in sorted(set(from_entries) | set(running)):
        if from_entries.get(key, 0) != running.get(key, 0):
            problems.append(
                f"running balance of {key[0]} FY{key[1]} is {running.get(key, 0)} but its entries sum to {from_entries.get(key, 0)}"
            )
    by_ministry_year: dict[tuple[str, int], int] = defaultdict(int)
    for ministry, fy, total in (
        await session.execute(
            select(LedgerEntry.ministry, LedgerEntry.fiscal_year, func.sum(LedgerEntry.amount))
            .where(
                LedgerEntry.account.like(f"{AccountKind.RESERVATION}:%")
                | LedgerEntry.account.like(f"{AccountKind.PAID}:%")
            )
            .group_by(LedgerEntry.ministry, LedgerEntry.fiscal_year)
        )
    ).all():
        by_ministry_year[(ministry, fy)] += int(total)
    kept = {(t.ministry, t.fiscal_year): t.committed for t in (await session.scalars(select(MinistryYearTotal))).all()}
    for ministry_key in sorted(set(by_ministry_year) | set(kept)):
        want, have = by_ministry_year.get(ministry_key, 0), kept.get(ministry_key, 0)
        if want != have:
            problems.append(
                f"{ministry_key[0]} committed to FY{ministry_key[1]} is kept as {have} but the entries sum to {want}"
            )
    totals: dict[str, int] = defaultdict(int)
    for (account, fy), total in from_entries.items():
        totals[account] += total
        if Account.parse(account).kind.committed and total < 0:
            problems.append(f"account {account} is below zero in FY{fy} ({total})")
    problems += [
        f"account {account} is below zero ({total})"
        for account, total in sorted(totals.items())
        if account != ENDOWMENT and total < 0
    ]

    programme = await session.get(Programme, programme_code)
    summary = await fund_summary(session, programme_code)
    if programme is not None and sum(m.allocated for m in summary) > programme.fund_total:
        problems.append(f"allocations {sum(m.allocated for m in summary)} exceed the fund {programme.fund_total}")
    for m in summary:
        if m.paid + m.reserved + m.available != m.allocated:
            problems.append(
                f"{m.ministry}: paid {m.paid} + reserved {m.reserved} + available {m.available} != allocated {m.allocated}"
            )
        problems += [f"{m.ministry}: {breach}" for breach in ceiling_breaches(m.fiscal_years)]

    closed = set(
        (
            await session.scalars(
                select(Project.id).where(Project.status.in_((ProjectStatus.COMPLETED, ProjectStatus.TERMINATED)))
            )
        ).all()
    )
    held: dict[str, int] = defaultdict(int)
    for r in (await session.scalars(select(Reservation))).all():
        if r.status == "open":
            held[r.project_id] += r.amount - r.paid
            if r.paid > r.amount:
                problems.append(f"reservation {r.project_id}/{r.stage_no}/{r.part} paid more than it holds")
            if r.project_id in closed:
                problems.append(f"closed project {r.project_id} still holds open reservation {r.stage_no}/{r.part}")
        elif r.paid + r.released != r.amount:
            problems.append(
                f"reservation {r.project_id}/{r.stage_no}/{r.part} closed with {r.amount - r.paid - r.released} unresolved"
            )
    for account, total in totals.items():
        parsed = Account.parse(account)
        if parsed.kind == AccountKind.RESERVATION and total and parsed.owner not in held:
            held[str(parsed.owner)] = 0
    for project_id, amount in held.items():
        in_account = totals.get(str(Account.reservation(project_id)), 0)
        if in_account != amount:
            problems.append(
                f"project {project_id}: open reservations hold {amount} but its reservation account holds {in_account}"
            )
    return problems
