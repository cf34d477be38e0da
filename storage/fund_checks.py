"""Recorded runs of the ledger's full invariant scan (storage/ledger/invariants.py).

The scan reads every entry, so it runs on a schedule (workflows/fund_check.py) and on demand
(`trlgate fund-check`); each run is recorded here and readers show the latest one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.ledger import invariant_violations
from storage.models import FundCheck, utcnow


async def record(session: AsyncSession, *, violations: list[str], ran_by: str, key: str | None = None) -> FundCheck:
    check = FundCheck(checked_at=utcnow(), violations=list(violations), ran_by=ran_by, key=key)
    session.add(check)
    await session.flush()
    return check


async def run_and_record(
    session: AsyncSession, *, programme_code: str, ran_by: str, key: str | None = None
) -> FundCheck:
    """Scan and record; a run whose key was recorded before returns that record (no second scan)."""
    if key is not None:
        done = await session.scalar(select(FundCheck).where(FundCheck.key == key))
        if done is not None:
            return done
    violations = await invariant_violations(session, programme_code)
    return await record(session, violations=violations, ran_by=ran_by, key=key)


async def latest(session: AsyncSession) -> FundCheck | None:
    return await session.scalar(select(FundCheck).order_by(FundCheck.checked_at.desc(), FundCheck.id.desc()).limit(1))
