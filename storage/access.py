"""Who may read a project: the role rules (function level) and, for closed work, the need-to-know
rule of domain/security.py (data level). One function, `project_access`, decides for the API, the
codec endpoint and the activities that hand closed packages out."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.proposal import Classification
from domain.roles import Role
from domain.security import AccessDecision, decide
from storage.models import NeedToKnowGrant, Project, User

SEE_ALL = (Role.ADMIN, Role.OPS, Role.FINANCE)


def role_allows(user: User, project: Project) -> bool:
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return True
    if Role.PM.value in roles and project.programme_manager == user.username:
        return True
    if Role.REVIEWER.value in roles and user.username in project.reviewers:
        return True
    if Role.PERFORMER.value in roles and project.performer == user.username:
        return True
    return Role.MINISTRY.value in roles and user.ministry in project.public_use_ministries


def is_closed(project: Project) -> bool:
    return project.classification == Classification.CLOSED.value


async def granted_users(session: AsyncSession, project_id: str) -> set[str]:
    rows = await session.scalars(
        select(NeedToKnowGrant.username).where(
            NeedToKnowGrant.project_id == project_id, NeedToKnowGrant.revoked_at.is_(None)
        )
    )
    return set(rows.all())


def decide_for(user: User, project: Project, granted: bool, role_ok: bool | None = None) -> AccessDecision:
    return decide(
        closed=is_closed(project),
        label_level=project.label_level,
        label_compartments=project.label_compartments,
        clearance_level=user.clearance_level,
        compartments=user.compartments,
        granted=granted,
        role_allows=role_allows(user, project) if role_ok is None else role_ok,
    )


async def closed_decisions(
    session: AsyncSession, user: User, projects: Iterable[Project], role_ok: bool | None = None
) -> dict[str, AccessDecision]:
    """The user's decision for each closed project among `projects`, with one query for the
    user's grants (not one per project)."""
    granted = set(
        (
            await session.scalars(
                select(NeedToKnowGrant.project_id).where(
                    NeedToKnowGrant.username == user.username, NeedToKnowGrant.revoked_at.is_(None)
                )
            )
        ).all()
    )
    return {p.id: decide_for(user, p, p.id in granted, role_ok) for p in projects if is_closed(p)}


async def project_access(
    session: AsyncSession, user: User, project: Project, role_ok: bool | None = None
) -> AccessDecision:
    granted = is_closed(project) and user.username in await granted_users(session, project.id)
    return decide_for(user, project, granted, role_ok)
