"""Projects: start one from a proposal, list and read them, stop them cleanly; the closed-out
list of stopped projects; the rendered documents (hand-off packages, close-out reports)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from api.access import audit_listed, project_or_404
from api.context import ProjectContext, ProjectCtx, ProjectPerformer, ProjectPmRole
from api.deps import ClientDep, CurrentUser, PmUser, SessionDep, SettingsDep
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.params import MAX_GATES
from api.schemas.projects import ClosedOutOut, ProjectDetail, ProjectOut, TerminateIn
from domain.project import (
    ProjectStatus,
    StopResult,
    TerminateInput,
    WithdrawInput,
)
from domain.proposal import Proposal
from domain.roles import FundingMinistry
from services import files, project_lists
from services import projects as projects_service
from services.portfolio import Filters, Sort
from storage import queries
from storage.models import Document, Project
from workflows.project import ProjectWorkflow

router = APIRouter(prefix="/projects", tags=["projects"])
closed_out_router = APIRouter(prefix="/closed-out", tags=["projects"])
documents_router = APIRouter(prefix="/documents", tags=["projects"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectOut,
    responses={**AUTH, **responses(409, 422, 503)},
)
async def start_project(
    request: Request,
    proposal: Proposal,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
    settings: SettingsDep,
) -> Project:
    """Start a project's workflow from a proposal. A bad proposal is refused with 422 and nothing starts."""
    return await projects_service.start_project(request, session, client, user, settings, proposal)


# What a close-out row shows of its project as the project's row holds it.
_AS_STORED = "title organisation funding_ministry programme_manager start_trl target_trl lessons closed_at".split()


@closed_out_router.get("", response_model=ListOut[ClosedOutOut], responses={**AUTH, **responses(422)})
async def closed_out(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    paging: PageIn,
    q: str | None = Query(None, max_length=200, description="Words to find in the reason or the lessons."),
) -> ListOut[ClosedOutOut]:
    """Stopped projects (killed, terminated, held too long, unfunded) with the reason, the TRL they
    reached, the money paid and released, and their lessons learned: failure is kept, not hidden.
    The most recently closed first."""
    found = await project_lists.closed_out_page(session, user, q, paging.cursor, paging.limit)
    await audit_listed(request, session, user, "closed-out", _labels(found.items), found.withheld)
    ids = [p.id for p in found.items]
    released = await queries.released_by_project(session, ids)
    paid = await queries.paid_by_project(session, ids)
    documents = await queries.existing_documents(session, [f"{pid}-closeout" for pid in ids])
    rows = [
        ClosedOutOut(
            project_id=p.id,
            reason=p.stop_reason or "",
            trl_reached=p.current_trl,
            paid=paid[p.id],
            released=released[p.id],
            closeout_document_id=f"{p.id}-closeout" if f"{p.id}-closeout" in documents else None,
            **{name: getattr(p, name) for name in _AS_STORED},
        )
        for p in found.items
    ]
    return ListOut(items=rows, total=found.total, next=found.next)


def _labels(projects: list[Project]) -> list[tuple[str, str]]:
    return [(p.id, p.classification) for p in projects]


@router.get("", response_model=ListOut[ProjectOut], responses={**AUTH, **responses(422)})
async def list_projects(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    paging: PageIn,
    status_: ProjectStatus | None = Query(None, alias="status", description="Only projects in this status."),
    stage: int | None = Query(None, ge=1, le=MAX_GATES, description="Only projects in this stage."),
    trl: int | None = Query(None, ge=1, le=9, description="Only projects at this TRL."),
    ministry: FundingMinistry | None = Query(None, description="Only projects this ministry funds."),
    overdue: bool = Query(False, description="Only projects with an open gate past its due date."),
    sort: Sort = Query(Sort.NEWEST, description="newest first, by title, by TRL or by budget (highest first)."),
) -> ListOut[ProjectOut]:
    """The projects this user may see, in pages (follow `next`), with their total."""
    filters = Filters(status=status_, stage=stage, trl=trl, ministry=ministry, overdue_gates=overdue, sort=sort)
    found = await project_lists.project_page(session, user, filters, paging.cursor, paging.limit)
    await audit_listed(request, session, user, "projects", _labels(found.items), found.withheld)
    return ListOut(items=[ProjectOut.model_validate(p) for p in found.items], total=found.total, next=found.next)


@router.get("/{project_id}", response_model=ProjectDetail, responses={**AUTH, **responses(404)})
async def get_project(ctx: ProjectCtx) -> ProjectDetail:
    """Everything about one project: stages, gates, decisions, money, hand-offs, and the live workflow state."""
    return await projects_service.project_detail(ctx)


@router.post("/{project_id}/terminate", response_model=StopResult, responses={**AUTH, **responses(404, 409, 422, 503)})
async def terminate_project(body: TerminateIn, ctx: ProjectPmRole) -> StopResult:
    """Stop a project cleanly: open tasks cancelled, unpaid money released, close-out report rendered."""
    if not ctx.is_pm:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager may terminate it")
    stop = TerminateInput(requested_by=ctx.user.username, reason=body.reason, lessons=body.lessons)
    return await _request_stop(ctx, ProjectWorkflow.terminate, stop, "terminate")


async def _request_stop(
    ctx: ProjectContext, update: Any, stop: TerminateInput | WithdrawInput, action: str
) -> StopResult:
    if ctx.project.status in (ProjectStatus.COMPLETED, ProjectStatus.TERMINATED):
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"project {ctx.project.id} is already {ctx.project.status}"
        )
    result: StopResult = await ctx.command(update, stop, action=action, reason=stop.reason)
    return result


@router.post(
    "/{project_id}/withdraw", response_model=StopResult, responses={**AUTH, **responses(403, 404, 409, 422, 503)}
)
async def withdraw_project(body: TerminateIn, ctx: ProjectPerformer) -> StopResult:
    """The performer withdraws from the project: it stops the same clean way as a terminate."""
    if ctx.project.performer != ctx.user.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's performer may withdraw from it")
    stop = WithdrawInput(requested_by=ctx.user.username, reason=body.reason, lessons=body.lessons)
    return await _request_stop(ctx, ProjectWorkflow.withdraw, stop, "withdraw")


@documents_router.get(
    "/{document_id}",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "The rendered document"},
        **AUTH,
        **responses(404),
    },
)
async def get_document(document_id: str, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """A rendered document (hand-off package, close-out report), with its content hash in a header."""
    doc = await session.get(Document, document_id)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"document {document_id} not found")
    project = await project_or_404(request, session, user, doc.project_id, request.url.path)
    if not await files.may_read_document(session, user, project, doc):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="a reviewer reads the evidence after accepting the invitation without a conflict of interest",
        )
    return HTMLResponse(doc.content, headers={"X-Content-SHA256": doc.sha256})
