"""Projects: start one from a proposal, list and read them, stop them cleanly."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.access import is_project_pm, project_or_404, visible, visible_projects
from api.audit import record
from api.commands import send_update
from api.deps import (
    ClientDep,
    CurrentUser,
    PerformerUser,
    PmUser,
    SessionDep,
    SettingsDep,
    has_role,
    release_connection,
)
from api.errors import AUTH, refusal, responses
from api.schemas import ClosedOutOut, ProjectDetail, ProjectOut, TerminateIn
from domain.command import Command
from domain.programme import PROGRAMME_CODE
from domain.project import (
    ProjectSnapshot,
    ProjectStatus,
    ProjectWorkflowInput,
    StopResult,
    TerminateInput,
    WithdrawInput,
)
from domain.proposal import Proposal
from domain.roles import Role
from domain.security import SecurityLabel
from storage import ledger, queries
from storage.audit import audit_command
from storage.models import (
    Document,
    Gate,
    GateDecision,
    Handoff,
    Ministry,
    Project,
    Reservation,
    Stage,
    Tranche,
    User,
)
from storage.projects import insert_project
from workflows.project import ProjectWorkflow, workflow_id_for

router = APIRouter(tags=["projects"])
log = logging.getLogger("trlgate.api")
_QUERY_TIMEOUT = timedelta(seconds=2)


async def proposal_problems(session: AsyncSession, proposal: Proposal) -> list[str]:
    """What the database says is wrong with a proposal that is well-formed on its own."""
    problems: list[str] = []
    pm = await session.get(User, proposal.programme_manager)
    if pm is None or Role.PM.value not in pm.roles:
        problems.append(f"programme_manager {proposal.programme_manager!r} is not a programme manager")
    label = proposal.label
    if label is not None and pm is not None and not covers(pm, label):
        problems.append(
            f"programme_manager {proposal.programme_manager!r} is not cleared for the label {label_text(label)}"
        )
    for name in proposal.reviewers:
        reviewer = await session.get(User, name)
        if reviewer is None or Role.REVIEWER.value not in reviewer.roles:
            problems.append(f"reviewer {name!r} is not a registered reviewer")
        elif label is not None and not covers(reviewer, label):  # a closed panel reads closed evidence
            problems.append(f"reviewer {name!r} is not cleared for the label {label_text(label)}")
    if proposal.performer is not None:
        performer = await session.get(User, proposal.performer)
        if performer is None or Role.PERFORMER.value not in performer.roles:
            problems.append(f"performer {proposal.performer!r} is not a registered performer")
    for code in proposal.public_use_ministries:
        if await session.get(Ministry, code) is None:
            problems.append(f"public-use ministry {code!r} is not in the ministry registry")
    ministry = proposal.funding_ministry.value
    available = await ledger.balance(session, ledger.allocation_account(ministry))
    if available < proposal.total_budget:
        problems.append(
            f"the {ministry} allocation has {available} yen available; the project needs {proposal.total_budget}"
        )
    if proposal.project_id is not None and re.fullmatch(r"KP-\d{4}", proposal.project_id):
        # Else it would share workflow ids with every project whose id is generated (below).
        problems.append(f"project id {proposal.project_id!r} is reserved: generated project ids begin with it")
    elif proposal.project_id is not None and await _shares_workflow_ids(session, proposal.project_id):
        problems.append(
            f"project id {proposal.project_id!r} would share workflow ids with another project (one id followed by"
            " '-' begins the other): choose another id"
        )
    return problems


async def _shares_workflow_ids(session: AsyncSession, project_id: str) -> bool:
    """Whether an existing project's id is a hyphen-prefix of this one, or this one of it. Children
    are named `project-<id>-gate-N-rM`, `-handoff-<M>`, `-demo-<M>`: such a project's workflow id
    could be the other's child's, taking that id (the child cannot start while it runs) and the
    payloads stamped with it. The refusal names no project: the other may be closed."""
    parts = project_id.split("-")
    prefixes = ["-".join(parts[:i]) for i in range(1, len(parts))]
    if prefixes and await session.scalar(select(Project.id).where(Project.id.in_(prefixes)).limit(1)):
        return True
    # LIKE narrows (no project id holds % or _); startswith decides: LIKE is case-blind on SQLite.
    longer = await session.scalars(select(Project.id).where(Project.id.like(f"{project_id}-%")))
    return any(other.startswith(f"{project_id}-") for other in longer)


def covers(user: User, label: SecurityLabel) -> bool:
    return user.clearance_level >= label.level and set(label.compartments) <= set(user.compartments)


def label_text(label: SecurityLabel) -> str:
    return " ".join([label.level.name, "/".join(label.compartments)]).strip()


def _summary(p: Proposal) -> str:
    if p.label is not None:  # closed work: nothing that names the work itself
        return f"{p.project_id}: closed project ({p.label.level.name}); PM {p.programme_manager}; {p.funding_ministry.value}"
    return (
        f"{p.project_id}: {p.title} ({p.organisation}); PM {p.programme_manager}; {p.funding_ministry.value}; "
        f"TRL {p.start_trl}->{p.target_trl}; budget {p.total_budget:,} yen"
    )


async def _visible_project(request: Request, session: AsyncSession, user: User, project_id: str) -> Project:
    return await project_or_404(request, session, user, project_id, request.url.path)


@router.post(
    "/projects",
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
    if not has_role(user, Role.ADMIN) and proposal.programme_manager != user.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a programme manager starts only their own projects")
    if proposal.project_id is None:
        proposal.project_id = f"KP-{datetime.now(UTC):%Y}-{uuid.uuid4().hex[:8]}"
    project_id = proposal.project_id
    if problems := await proposal_problems(session, proposal):
        await record(request, user.username, "start_project", f"project:{project_id}", "rejected", problems=problems)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(problems))
    if await session.get(Project, project_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project_id} exists already")
    await release_connection(request)  # no pooled connection waits on Temporal
    workflow_id = workflow_id_for(project_id)
    # The start is one command with one audit entry, written with the project's row: by the
    # workflow's first activity or by this request, whichever commits first (keyed alike).
    command = Command(
        actor=user.username, action="start_project", target=f"project:{project_id}", key=f"start:{workflow_id}"
    )
    try:
        await client.start_workflow(
            ProjectWorkflow.run,
            ProjectWorkflowInput(
                proposal=proposal,
                seconds_per_day=settings.seconds_per_day,
                four_eyes_threshold=settings.four_eyes_threshold,
                progress_reports=settings.progress_reports,
                command=command,
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=_summary(proposal),
            # Closed work: as in the summary, nothing that names the work itself.
            static_details=None if proposal.label is not None else f"Research vision: {proposal.research_vision}",
        )
    except WorkflowAlreadyStartedError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project_id} was started already") from err
    except RPCError as err:
        raise refusal(err) from err
    # The row now, so the answer (and the next GET) finds it without waiting for the worker.
    try:
        async with request.app.state.sessionmaker.begin() as write:
            if await insert_project(write, PROGRAMME_CODE, workflow_id, proposal):
                await audit_command(write, command)
    except IntegrityError:
        pass  # the workflow's first activity wrote row and entry at the same moment
    project = await session.get(Project, project_id)
    assert project is not None
    return project


# What a close-out row shows of its project as the project's row holds it.
_AS_STORED = "title organisation funding_ministry programme_manager start_trl target_trl lessons closed_at".split()


@router.get("/closed-out", response_model=list[ClosedOutOut], responses=AUTH)
async def closed_out(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: str | None = Query(None, max_length=200, description="Words to find in the reason or the lessons."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[ClosedOutOut]:
    """Stopped projects (killed, terminated, held too long, unfunded) with the reason, the TRL they
    reached, the money paid and released, and their lessons learned: failure is kept, not hidden."""
    query = visible_projects(user, select(Project)).where(Project.status == "terminated")
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(func.lower(Project.stop_reason).like(pattern) | func.lower(Project.lessons).like(pattern))
    rows = (await session.scalars(query.order_by(Project.closed_at.desc(), Project.id))).all()
    page = (await visible(request, session, user, rows, "closed-out"))[offset : offset + limit]
    ids = [p.id for p in page]
    released = await queries.released_by_project(session, ids)
    paid = await queries.paid_by_project(session, ids)
    documents = await queries.existing_documents(session, [f"{pid}-closeout" for pid in ids])
    return [
        ClosedOutOut(
            project_id=p.id,
            reason=p.stop_reason or "",
            trl_reached=p.current_trl,
            paid=paid[p.id],
            released=released[p.id],
            closeout_document_id=f"{p.id}-closeout" if f"{p.id}-closeout" in documents else None,
            **{name: getattr(p, name) for name in _AS_STORED},
        )
        for p in page
    ]


@router.get("/projects", response_model=list[ProjectOut], responses=AUTH)
async def list_projects(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    status_: str | None = Query(None, alias="status", description="active, handoff, completed or terminated"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[Project]:
    """The projects this user may see, newest first."""
    query = visible_projects(user, select(Project)).order_by(Project.created_at.desc())
    if status_ is not None:
        query = query.where(Project.status == status_)
    rows = (await session.scalars(query)).all()
    return (await visible(request, session, user, rows, "projects"))[offset : offset + limit]


async def _live(client: Client, project: Project) -> ProjectSnapshot | None:
    """The workflow's own view, or None when it cannot answer now (not found, Temporal down or
    slow, its task failing): the page still shows what the database knows. A bug is not hidden."""
    try:
        snapshot: ProjectSnapshot = await client.get_workflow_handle(project.workflow_id).query(
            ProjectWorkflow.status, rpc_timeout=_QUERY_TIMEOUT
        )
        return snapshot
    except (RPCError, WorkflowQueryFailedError) as err:
        log.info("project %s: no live view (%s)", project.id, err)
        return None


@router.get("/projects/{project_id}", response_model=ProjectDetail, responses={**AUTH, **responses(404)})
async def get_project(project_id: str, session: SessionDep, user: CurrentUser, request: Request) -> ProjectDetail:
    """Everything about one project: stages, gates, decisions, money, hand-offs, and the live workflow state."""
    project = await _visible_project(request, session, user, project_id)

    async def rows(model: Any, *order: Any) -> list[Any]:
        return list((await session.scalars(select(model).where(model.project_id == project_id).order_by(*order))).all())

    detail = ProjectDetail.model_validate(
        {
            **ProjectOut.model_validate(project).model_dump(),
            "research_vision": project.research_vision,
            "reviewers": project.reviewers,
            "public_use_ministries": project.public_use_ministries,
            "stages": await rows(Stage, Stage.stage_no),
            "gates": await rows(Gate, Gate.gate_no),
            "decisions": await rows(GateDecision, GateDecision.gate_no),
            "tranches": await rows(Tranche, Tranche.stage_no, Tranche.tranche_no),
            "reservations": await rows(Reservation, Reservation.stage_no),
            "handoffs": await rows(Handoff, Handoff.ministry),
            "documents": [d.id for d in await rows(Document, Document.created_at)],
        }
    )
    client = request.app.state.temporal
    if client is not None:
        await release_connection(request)
        detail.live = await _live(client, project)
    return detail


@router.post(
    "/projects/{project_id}/terminate",
    response_model=StopResult,
    responses={**AUTH, **responses(404, 409, 422, 503)},
)
async def terminate_project(
    project_id: str, body: TerminateIn, request: Request, session: SessionDep, client: ClientDep, user: PmUser
) -> StopResult:
    """Stop a project cleanly: open tasks cancelled, unpaid money released, close-out report rendered."""
    project = await _visible_project(request, session, user, project_id)
    if not is_project_pm(user, project):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager may terminate it")
    stop = TerminateInput(requested_by=user.username, reason=body.reason, lessons=body.lessons)
    return await _request_stop(request, client, user, project, ProjectWorkflow.terminate, stop, "terminate")


async def _request_stop(
    request: Request, client: Client, user: User, project: Project, update: Any, stop: Any, action: str
) -> StopResult:
    if project.status in (ProjectStatus.COMPLETED, ProjectStatus.TERMINATED):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project.id} is already {project.status}")
    result: StopResult = await send_update(
        request,
        client,
        project.workflow_id,
        update,
        stop,
        actor=user.username,
        action=action,
        target=f"project:{project.id}",
        reason=stop.reason,
    )
    return result


@router.post(
    "/projects/{project_id}/withdraw",
    response_model=StopResult,
    responses={**AUTH, **responses(403, 404, 409, 422, 503)},
)
async def withdraw_project(
    project_id: str, body: TerminateIn, request: Request, session: SessionDep, client: ClientDep, user: PerformerUser
) -> StopResult:
    """The performer withdraws from the project: it stops the same clean way as a terminate."""
    project = await _visible_project(request, session, user, project_id)
    if project.performer != user.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's performer may withdraw from it")
    stop = WithdrawInput(requested_by=user.username, reason=body.reason, lessons=body.lessons)
    return await _request_stop(request, client, user, project, ProjectWorkflow.withdraw, stop, "withdraw")


@router.get(
    "/documents/{document_id}",
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
    await _visible_project(request, session, user, doc.project_id)
    return HTMLResponse(doc.content, headers={"X-Content-SHA256": doc.sha256})
