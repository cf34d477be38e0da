from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select

from api.commands import send_update
from api.deps import ClientDep, CurrentUser, MinistryUser, SessionDep, has_role
from api.errors import AUTH, responses
from api.schemas import AcceptIn, HandoffOut
from domain.project import HandoffAcceptInput, HandoffResult
from domain.roles import Role
from storage.models import Handoff, Project
from workflows.project import ProjectWorkflow

router = APIRouter(tags=["hand-offs"])


@router.get("/handoffs", response_model=list[HandoffOut], responses=AUTH)
async def list_handoffs(session: SessionDep, user: CurrentUser) -> list[Handoff]:
    """Liaisons see their ministry's hand-offs; programme managers those of their projects."""
    query = select(Handoff).order_by(Handoff.created_at.desc())
    if not has_role(user, Role.ADMIN, Role.OPS, Role.FINANCE):
        conditions = []
        if has_role(user, Role.MINISTRY) and user.ministry:
            conditions.append(Handoff.ministry == user.ministry)
        if has_role(user, Role.PM):
            conditions.append(Project.programme_manager == user.username)
        if not conditions:
            return []
        cond = conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]
        query = query.join(Project, Project.id == Handoff.project_id).where(cond)
    return list((await session.scalars(query)).all())


@router.post(
    "/handoffs/{handoff_id}/accept",
    response_model=HandoffResult,
    responses={**AUTH, **responses(404, 409, 422, 503)},
)
async def accept_handoff(
    handoff_id: str, body: AcceptIn, request: Request, session: SessionDep, client: ClientDep, user: MinistryUser
) -> HandoffResult:
    """The receiving ministry's liaison accepts a finished project for public use."""
    handoff = await session.get(Handoff, handoff_id)
    if handoff is None or handoff.ministry != user.ministry:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"hand-off {handoff_id} not found")
    project = await session.get(Project, handoff.project_id)
    assert project is not None
    result: HandoffResult = await send_update(
        request,
        client,
        project.workflow_id,
        ProjectWorkflow.accept_handoff,
        HandoffAcceptInput(ministry=handoff.ministry, accepted_by=user.username, note=body.note),
        actor=user.username,
        action="accept_handoff",
        target=f"handoff:{handoff_id}",
    )
    return result
