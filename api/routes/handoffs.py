"""Hand-offs to public-use ministries: the liaison accepts or declines, the programme manager
re-routes or hands off early for demonstration; the ministry registry names the liaisons."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import audit_listed, authorize
from api.context import ProjectContext, ProjectPm
from api.deps import CurrentUser, MinistryUser, PmUser, SessionDep, has_role
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.schemas.handoffs import AcceptIn, ConcludeIn, DeclineIn, DemoHandoffIn, HandoffOut, MinistryOut, RerouteIn
from domain.files import AttachedTo
from domain.handoff import (
    DemoHandoffInput,
    HandoffAnswer,
    HandoffKind,
    HandoffOutcome,
    HandoffRun,
    HandoffStatus,
    RerouteInput,
)
from domain.project import ConcludeHandoffsInput, ProjectOutcome
from domain.roles import Role
from services import files
from services.handoffs import handoff_page
from storage.models import Handoff, Ministry, Project, User
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow

router = APIRouter(prefix="/handoffs", tags=["hand-offs"])
# Hand-off commands that name the project: an early hand-off for demonstration, concluding them.
project_handoffs = APIRouter(prefix="/projects/{project_id}", tags=["hand-offs"])
ministries_router = APIRouter(prefix="/ministries", tags=["hand-offs"])
COMMAND = {**AUTH, **responses(403, 404, 409, 422, 503)}


@ministries_router.get("", response_model=list[MinistryOut], responses=AUTH)
async def list_ministries(session: SessionDep, user: CurrentUser) -> list[MinistryOut]:
    """The ministry registry: each public-use ministry with its liaison users."""
    ministries = (await session.scalars(select(Ministry).order_by(Ministry.code))).all()
    users = (await session.scalars(select(User).where(User.active.is_(True)))).all()
    return [
        MinistryOut(
            code=m.code,
            name=m.name,
            liaisons=sorted(u.username for u in users if u.ministry == m.code and Role.MINISTRY.value in u.roles),
        )
        for m in ministries
    ]


@router.get("", response_model=ListOut[HandoffOut], responses={**AUTH, **responses(422)})
async def list_handoffs(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    paging: PageIn,
    status_: HandoffStatus | None = Query(None, alias="status", description="Only hand-offs in this state."),
) -> ListOut[HandoffOut]:
    """Liaisons see their ministry's hand-offs; programme managers those of their projects; closed
    projects' hand-offs only with clearance and need-to-know. Newest first."""
    found = await handoff_page(session, user, status_, paging.cursor, paging.limit)
    await audit_listed(request, session, user, "handoffs", [(h.project_id, c) for h, c in found.items], found.withheld)
    return ListOut(items=[HandoffOut.model_validate(h) for h, _ in found.items], total=found.total, next=found.next)


async def reachable_handoff(
    request: Request, session: AsyncSession, user: User, handoff_id: str
) -> tuple[Handoff, ProjectContext]:
    """The hand-off and its project as this user may reach them. Looked up in the route, not in a
    dependency, so that an invalid body is refused (422) before the hand-off is looked for."""
    handoff = await session.get(Handoff, handoff_id)
    liaison_elsewhere = has_role(user, Role.MINISTRY) and handoff is not None and handoff.ministry != user.ministry
    if handoff is None or (liaison_elsewhere and not has_role(user, Role.PM, Role.ADMIN)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"hand-off {handoff_id} not found")
    project = await session.get(Project, handoff.project_id)
    assert project is not None
    access = await authorize(request, session, user, project, f"handoff:{handoff_id}")
    return handoff, ProjectContext(project, user, access, request, session)


@router.get("/{handoff_id}", response_model=HandoffOut, responses={**AUTH, **responses(403, 404)})
async def get_handoff(handoff_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Handoff:
    handoff, _ = await reachable_handoff(request, session, user, handoff_id)
    return handoff


async def _answer(ctx: ProjectContext, handoff: Handoff, answer: HandoffAnswer, action: str) -> HandoffOutcome:
    if handoff.status != "pending":  # its workflow has ended: say why, not "not running"
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the hand-off to {handoff.ministry} is already {handoff.status}"
        )
    if handoff.workflow_id is None:  # a hand-off of the first design: nothing serves it any more
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the hand-off to {handoff.ministry} predates hand-off workflows: it takes no answer",
        )
    outcome: HandoffOutcome = await ctx.command(
        HandoffWorkflow.answer,
        answer,
        action=action,
        target=f"handoff:{handoff.id}",
        workflow_id=handoff.workflow_id,
        receiving_programme=answer.receiving_programme,
        reason=answer.reason,
    )
    return outcome


@router.post("/{handoff_id}/accept", response_model=HandoffOutcome, responses=COMMAND)
async def accept_handoff(
    handoff_id: str, body: AcceptIn, request: Request, session: SessionDep, user: MinistryUser
) -> HandoffOutcome:
    """The receiving ministry's liaison accepts, naming the programme or use that takes it on."""
    handoff, ctx = await reachable_handoff(request, session, user, handoff_id)
    answer = HandoffAnswer(accept=True, answered_by=user.username, receiving_programme=body.receiving_programme)
    return await _answer(ctx, handoff, answer, "accept_handoff")


@router.post("/{handoff_id}/decline", response_model=HandoffOutcome, responses=COMMAND)
async def decline_handoff(
    handoff_id: str, body: DeclineIn, request: Request, session: SessionDep, user: MinistryUser
) -> HandoffOutcome:
    """The liaison declines, with a reason; the programme manager may then re-route it."""
    handoff, ctx = await reachable_handoff(request, session, user, handoff_id)
    answer = HandoffAnswer(accept=False, answered_by=user.username, reason=body.reason)
    return await _answer(ctx, handoff, answer, "decline_handoff")


async def _registered_ministry(session: AsyncSession, code: str) -> None:
    if await session.get(Ministry, code) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{code!r} is not in the ministry registry")


@router.post("/{handoff_id}/reroute", response_model=HandoffRun, responses=COMMAND)
async def reroute_handoff(
    handoff_id: str, body: RerouteIn, request: Request, session: SessionDep, user: PmUser
) -> HandoffRun:
    """The programme manager offers a declined (or overdue) hand-off to another ministry."""
    handoff, ctx = await reachable_handoff(request, session, user, handoff_id)
    if not ctx.is_pm:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager re-routes it")
    await _registered_ministry(session, body.to_ministry)
    arg = RerouteInput(handoff_id=handoff.id, to_ministry=body.to_ministry, requested_by=user.username, note=body.note)
    run: HandoffRun = await ctx.command(
        ProjectWorkflow.reroute_handoff,
        arg,
        action="reroute_handoff",
        target=f"handoff:{handoff.id}",
        to_ministry=body.to_ministry,
    )
    return run


@project_handoffs.post("/demo-handoffs", response_model=HandoffRun, responses=COMMAND)
async def demo_handoff(body: DemoHandoffIn, ctx: ProjectPm) -> HandoffRun:
    """An early hand-off for demonstration use, from TRL 7 on; the project carries on."""
    await _registered_ministry(ctx.session, body.ministry)
    annexes = await files.refs(ctx.session, ctx.project.id, AttachedTo.HANDOFF, HandoffKind.DEMONSTRATION.value)
    brief = body.brief.model_copy(update={"annexes": annexes})
    arg = DemoHandoffInput(ministry=body.ministry, requested_by=ctx.user.username, brief=brief)
    run: HandoffRun = await ctx.command(
        ProjectWorkflow.start_demo_handoff, arg, action="demo_handoff", ministry=body.ministry
    )
    return run


@project_handoffs.post("/handoffs/conclude", response_model=ProjectOutcome, responses=COMMAND)
async def conclude_handoffs(body: ConcludeIn, ctx: ProjectPm) -> ProjectOutcome:
    """Every hand-off has its answer and the PM will not re-route a declined one: complete now,
    instead of at the end of the re-route window."""
    arg = ConcludeHandoffsInput(requested_by=ctx.user.username, note=body.note)
    outcome: ProjectOutcome = await ctx.command(ProjectWorkflow.conclude_handoffs, arg, action="conclude_handoffs")
    return outcome
