"""Who may see what, enforced: every project-scoped endpoint calls `authorize`; a list either
narrows in SQL by the same policy (storage/access.role_scope and readable) and audits its page
with `audit_listed`, or filters a short list of projects with `visible`. All use storage/access
(roles, then clearance and need-to-know for closed work), and every decision on closed data is
audited, allowed or denied."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record
from domain.proposal import Classification
from domain.roles import Role
from domain.security import AccessDecision
from storage.access import closed_decisions, is_closed, project_access, role_allows
from storage.models import Project, User
from storage.paging import AnySelect


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


# At most this many withheld projects are named in one list's audit entry (a page's window holds
# few; the cap keeps one request's audit bounded whatever the window spans).
WITHHELD_NAMED = 200


async def audit_listed(
    request: Request,
    session: AsyncSession,
    user: User,
    action: str,
    shown: Iterable[tuple[str, str]],
    withheld: AnySelect | None = None,
) -> None:
    """Audit what closed work a page of a list showed and withheld, as `visible` does for a list
    filtered in Python. `shown`: the page's (project id, classification) pairs; `withheld`: a
    query of the ids of closed projects within the page's key range that the SQL left out
    (the role reaches them, the policy refuses them)."""
    shown_ids = sorted({pid for pid, classification in shown if classification == Classification.CLOSED.value})
    withheld_ids = (
        sorted(set((await session.scalars(withheld.limit(WITHHELD_NAMED))).all())) if withheld is not None else []
    )
    if shown_ids or withheld_ids:
        await record(
            request, user.username, f"list_closed:{action}", "projects", "ok", shown=shown_ids, withheld=withheld_ids
        )


def is_project_pm(user: User, project: Project) -> bool:
    return Role.ADMIN.value in user.roles or project.programme_manager == user.username
