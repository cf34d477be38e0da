"""Who may see what, enforced: every project-scoped endpoint calls `authorize`, every list calls
`visible`. Both use storage/access.project_access (roles, then clearance and need-to-know for
closed work), and every decision on closed data is audited, allowed or denied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy import Select, false, or_
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record
from domain.roles import Role
from domain.security import AccessDecision
from storage.access import SEE_ALL, closed_decisions, is_closed, project_access, role_allows
from storage.models import Project, User


async def authorize(
    request: Request, session: AsyncSession, user: User, project: Project, action: str, shown_as: str | None = None
) -> AccessDecision:
    """404 when no role reaches the project (its existence stays hidden), 403 with the reason when
    a role does but the clearance or the need-to-know grant is missing. `shown_as` names the project
    in a refusal to a reader who knows it only so (a ledger transaction of a pseudonymous project)."""
    decision = await project_access(session, user, project)
    if is_closed(project):
        await record(
            request,
            user.username,
            f"read_closed:{action}",
            f"project:{project.id}",
            "ok" if decision else "denied",
            reason=decision.reason,
        )
    if decision:
        return decision
    if not role_allows(user, project):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{shown_as or f'project {project.id}'} not found")
    what = f"{shown_as} belongs to closed work" if shown_as else f"closed project {project.id}"
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{what}: {decision.reason}")


async def project_or_404(request: Request, session: AsyncSession, user: User, project_id: str, action: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"project {project_id} not found")
    await authorize(request, session, user, project, action)
    return project


async def visible(
    request: Request, session: AsyncSession, user: User, projects: Sequence[Project], action: str
) -> list[Project]:
    """The projects of a list this user may read; closed ones withheld or shown are audited."""
    reachable = [p for p in projects if role_allows(user, p)]
    # One query for the user's grants, however many closed projects the list holds.
    decisions = await closed_decisions(session, user, reachable) if any(map(is_closed, reachable)) else {}
    out = [p for p in reachable if not is_closed(p) or decisions[p.id]]
    shown = [p.id for p in reachable if is_closed(p) and decisions[p.id]]
    withheld = [p.id for p in reachable if is_closed(p) and not decisions[p.id]]
    if shown or withheld:
        await record(request, user.username, f"list_closed:{action}", "projects", "ok", shown=shown, withheld=withheld)
    return out


def visible_projects(user: User, query: Select[Any]) -> Select[Any]:
    """Narrow a project query in SQL by role (JSON list membership for reviewers and ministries is
    checked by `visible` afterwards, since SQLite and PostgreSQL spell it differently)."""
    roles = set(user.roles)
    if roles & {r.value for r in SEE_ALL}:
        return query
    conditions = []
    if Role.PM.value in roles:
        conditions.append(Project.programme_manager == user.username)
    if Role.PERFORMER.value in roles:
        conditions.append(Project.performer == user.username)
    if Role.REVIEWER.value in roles or Role.MINISTRY.value in roles:
        return query
    return query.where(or_(*conditions) if conditions else false())


def is_project_pm(user: User, project: Project) -> bool:
    return Role.ADMIN.value in user.roles or project.programme_manager == user.username
