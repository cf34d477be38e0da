"""Need-to-know grants for closed (保全) projects: list, grant (with a reason), revoke. One rule for
the API (/projects/{id}/grants) and the admin pages. A grant is refused to a user whose clearance
does not cover the project's label: a grant alone never opens closed work. Every grant and revoke
is audited in the transaction that writes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.bounds import LongText
from domain.proposal import Classification, Username
from domain.security import Level
from storage.access import is_closed
from storage.audit import audit
from storage.models import NeedToKnowGrant, Project, User


class GrantIn(BaseModel):
    username: Username
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]


@dataclass(frozen=True)
class ClosedProject:
    id: str
    label_level: Level
    label_compartments: list[str]
    grants: int  # grants in force


async def closed_project(session: AsyncSession, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"project {project_id} not found")
    if not is_closed(project):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project_id} is open: it takes no grants")
    return project


async def closed_projects(session: AsyncSession) -> list[ClosedProject]:
    """Every closed project with its label and how many grants are in force: what the security
    officer administers (ids and labels only; titles are read through the access policy)."""
    in_force = (
        select(NeedToKnowGrant.project_id, func.count().label("n"))
        .where(NeedToKnowGrant.revoked_at.is_(None))
        .group_by(NeedToKnowGrant.project_id)
        .subquery()
    )
    rows = await session.execute(
        select(Project.id, Project.label_level, Project.label_compartments, func.coalesce(in_force.c.n, 0))
        .outerjoin(in_force, in_force.c.project_id == Project.id)
        .where(Project.classification == Classification.CLOSED.value)
        .order_by(Project.id)
    )
    return [ClosedProject(pid, Level(level), list(comps or []), int(n)) for pid, level, comps, n in rows.all()]


async def grants(session: AsyncSession, project_id: str) -> list[NeedToKnowGrant]:
    """A closed project's grants, those in force and those revoked (the history stays)."""
    await closed_project(session, project_id)
    rows = await session.scalars(
        select(NeedToKnowGrant).where(NeedToKnowGrant.project_id == project_id).order_by(NeedToKnowGrant.username)
    )
    return list(rows.all())


def covers(project: Project, user: User) -> str | None:
    """Why the user's clearance does not cover the project's label, or None when it does."""
    missing = sorted(set(project.label_compartments) - set(user.compartments))
    if user.clearance_level >= project.label_level and not missing:
        return None
    return f"{user.username}'s clearance does not cover the label of {project.id}" + (
        f" (compartments missing: {', '.join(missing)})" if missing else ""
    )


async def grant(session: AsyncSession, admin: User, project_id: str, body: GrantIn) -> NeedToKnowGrant:
    project = await closed_project(session, project_id)
    user = await session.get(User, body.username)
    if user is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"user {body.username} does not exist")
    if problem := covers(project, user):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem)
    row = await session.get(NeedToKnowGrant, (project_id, body.username))
    if row is not None and row.revoked_at is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{body.username} holds a grant for {project_id}")
    if row is None:
        row = NeedToKnowGrant(project_id=project_id, username=body.username)
        session.add(row)
    row.granted_by, row.reason, row.granted_at = admin.username, body.reason, datetime.now(UTC)
    row.revoked_at = row.revoked_by = None
    audit(
        session, admin.username, "grant_need_to_know", f"project:{project_id}", user=body.username, reason=body.reason
    )
    await session.flush()
    return row


async def revoke(session: AsyncSession, admin: User, project_id: str, username: str) -> NeedToKnowGrant:
    await closed_project(session, project_id)
    row = await session.get(NeedToKnowGrant, (project_id, username))
    if row is None or row.revoked_at is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{username} holds no grant for {project_id}")
    row.revoked_at, row.revoked_by = datetime.now(UTC), admin.username
    audit(session, admin.username, "revoke_need_to_know", f"project:{project_id}", user=username)
    await session.flush()
    return row
