"""Recorded runs of the daily repair (workflows/repair.py); the operations page shows the latest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import RepairRun


async def record(
    session: AsyncSession, *, key: str, ran_by: str, repaired: list[dict[str, Any]], drift: list[dict[str, Any]]
) -> RepairRun:
    """Record a run once: a run whose key was recorded before returns that record."""
    done = await session.scalar(select(RepairRun).where(RepairRun.key == key))
    if done is not None:
        return done
    run = RepairRun(
        key=key, ran_by=ran_by, repaired=repaired, released=sum(int(r["released"]) for r in repaired), drift=drift
    )
    session.add(run)
    await session.flush()
    return run


async def latest(session: AsyncSession) -> RepairRun | None:
    return await session.scalar(select(RepairRun).order_by(RepairRun.ran_at.desc(), RepairRun.id.desc()).limit(1))
