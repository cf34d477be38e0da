"""A project's start and its detail view: the one place the API route and the pages go through,
so the checks, the audit and the refusals are written once."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.audit import record
from api.context import ProjectContext
from api.deps import has_role, release_connection
from api.errors import refusal
from api.proposals import proposal_problems, summary
from api.schemas.projects import ProjectDetail, ProjectOut
from config import Settings
from domain import search_attributes
from domain.command import Command
from domain.programme import PROGRAMME_CODE
from domain.project import ProjectSnapshot, ProjectWorkflowInput
from domain.proposal import Classification, Proposal
from domain.roles import Role
from services import visions
from storage.audit import audit_command
from storage.models import Document, Gate, GateDecision, Handoff, Project, Reservation, Stage, Tranche, User
from storage.projects import insert_project
from workflows.project import ProjectWorkflow, workflow_id_for

log = logging.getLogger("trlgate.api")
_QUERY_TIMEOUT = timedelta(seconds=2)


# A closed project's id is generic: `KP-` and groups of digits and lowercase hex letters, as the
# generated ids are (KP-<year>-<8 hex digits>). Temporal shows workflow ids in clear (in the UI's
# lists, to every operator), and an id of one's own words could name the work.
CLOSED_ID = re.compile(r"KP-[0-9a-f]+(-[0-9a-f]+)*")


def closed_id_problem(proposal: Proposal) -> str | None:
    if proposal.classification != Classification.CLOSED or proposal.project_id is None:
        return None
    if CLOSED_ID.fullmatch(proposal.project_id):
        return None
    # One reason, no "; " (the pages split reasons there), led by "project id" (the field it is of);
    # the refused id itself is not repeated (nor audited): it may be the words it must not hold.
    return (
        "project id: a closed project's id is KP- and groups of digits and a-f only, "
        "as generated (leave it empty): workflow ids are shown in clear in the Temporal UI, and an id of "
        "one's own words could name the work"
    )


def workflow_input(proposal: Proposal, settings: Settings, command: Command | None = None) -> ProjectWorkflowInput:
    """A new project's workflow input: the proposal and the programme's settings it runs under."""
    return ProjectWorkflowInput(
        proposal=proposal,
        seconds_per_day=settings.seconds_per_day,
        four_eyes_threshold=settings.four_eyes_threshold,
        progress_reports=settings.progress_reports,
        command=command,
    )


async def start_project(
    request: Request, session: AsyncSession, client: Client, user: User, settings: Settings, proposal: Proposal
) -> Project:
    """Start a project's workflow from a proposal: 403 for another PM's project, 422 with the
    database's reasons (audited), 409 when it exists. Nothing starts on a refusal."""
    if not has_role(user, Role.ADMIN) and proposal.programme_manager != user.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a programme manager starts only their own projects")
    if problem := closed_id_problem(proposal):
        await record(request, user.username, "start_project", "project:closed", "rejected", problems=[problem])
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem)
    if proposal.project_id is None:
        proposal.project_id = f"KP-{datetime.now(UTC):%Y}-{uuid.uuid4().hex[:8]}"
    project_id = proposal.project_id
    if problems := await proposal_problems(session, proposal):
        await record(request, user.username, "start_project", f"project:{project_id}", "rejected", problems=problems)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(problems))
    if await session.get(Project, project_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project_id} exists already")
    await visions.name_the_vision(session, proposal)
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
            workflow_input(proposal, settings, command),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=summary(proposal),
            # Those that never change are set here, once (the workflow upserts the others as they change).
            search_attributes=search_attributes.project_start(proposal),
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


async def live_status(ctx: ProjectContext) -> ProjectSnapshot | None:
    """The workflow's own view, or None when it cannot answer now (Temporal not connected, down or
    slow; not found; its task failing): the page still shows what the database knows. A bug is not
    hidden."""
    if ctx.temporal is None:
        return None
    await release_connection(ctx.request)
    try:
        snapshot: ProjectSnapshot = await ctx.workflow.query(ProjectWorkflow.status, rpc_timeout=_QUERY_TIMEOUT)
        return snapshot
    except (RPCError, WorkflowQueryFailedError) as err:
        log.info("project %s: no live view (%s)", ctx.project.id, err)
        return None


async def project_detail(ctx: ProjectContext) -> ProjectDetail:
    """Everything about one project: stages, gates, decisions, money, hand-offs, and the live workflow state."""
    project = ctx.project

    async def rows(model: Any, *order: Any) -> list[Any]:
        query = select(model).where(model.project_id == project.id).order_by(*order)
        return list((await ctx.session.scalars(query)).all())

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
    detail.live = await live_status(ctx)
    return detail
