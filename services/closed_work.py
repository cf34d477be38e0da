"""Closed (保全) work in a list's SQL: the rows a user may read, so that counts, totals and pages
agree with what the one access policy shows (storage/access.closed_decisions: grant, clearance,
compartments and role, as domain/security.decide rules)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.proposal import Classification
from storage.access import closed_decisions
from storage.models import NeedToKnowGrant, Project, User


async def readable(session: AsyncSession, user: User) -> ColumnElement[bool]:
    """A condition over a query joined with Project: open work, and closed work the user may read.

    Only closed work the user holds a grant for can pass, so the policy is asked about those few
    projects (one query for them, one for the grants), not about every row of the list. A grant the
    clearance no longer covers keeps the project out of the count too, not only out of the rows."""
    granted = select(NeedToKnowGrant.project_id).where(
        NeedToKnowGrant.username == user.username, NeedToKnowGrant.revoked_at.is_(None)
    )
    held = await session.scalars(
        select(Project).where(Project.classification == Classification.CLOSED.value, Project.id.in_(granted))
    )
    allowed = [pid for pid, decision in (await closed_decisions(session, user, held.all())).items() if decision]
    return or_(Project.classification != Classification.CLOSED.value, Project.id.in_(allowed))
