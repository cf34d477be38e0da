"""Gate rounds: the programme manager runs them; reviewers see them with independence applied."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.access import is_project_pm, project_for
from api.commands import send_update
from api.deps import ClientDep, CurrentUser, PmUser, SessionDep, has_role, release_connection
from api.errors import AUTH, refusal, responses
from api.params import GateNo
from api.schemas import (
    DecisionIn,
    EvidenceIn,
    ExtendIn,
    GateDecisionOut,
    GateRequirementsOut,
    GateViewOut,
    InviteIn,
    NoteIn,
    ReassignIn,
)
from domain.gate_review import (
    EvidenceInput,
    ExtendDeadlineInput,
    GateDecisionInput,
    GateOutcome,
    GateView,
    InviteInput,
    OpenReviewInput,
    ReassignInput,
)
from domain.project import (
    DecisionInput,
    DecisionRef,
    ProjectSnapshot,
    ResumeInput,
    VerifyConditionsInput,
)
from domain.roles import Role
from storage.models import Gate, Project, User
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow

router = APIRouter(tags=["gates"])
COMMAND = {**AUTH, **responses(404, 409, 422, 503)}


async def open_round(session: AsyncSession, project: Project, gate_no: int) -> Gate:
    gate = await session.get(Gate, (project.id, gate_no))
    if gate is None or gate.status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"gate {gate_no} of {project.id} is not under review")
    if gate.workflow_id is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this gate predates gate rounds: use the task endpoints")
    return gate


@router.get(
    "/projects/{project_id}/gates/{gate_no}", response_model=GateViewOut, responses={**AUTH, **responses(404, 409)}
)
async def view_gate(
    project_id: str, gate_no: GateNo, request: Request, session: SessionDep, client: ClientDep, user: CurrentUser
) -> GateViewOut:
    """The gate's current round as this user may see it: material only for cleared panel members,
    other reviews only after submitting one's own; and what the gate requires (deliverables, criteria)."""
    project = await project_for(request, session, user, project_id, pm_only=False)
    gate = await open_round(session, project, gate_no)
    overseer = is_project_pm(user, project) or has_role(user, Role.OPS)
    viewer = project.programme_manager if overseer else user.username
    await release_connection(request)
    try:
        view: GateView = await client.get_workflow_handle(gate.workflow_id or "").query(GateReviewWorkflow.view, viewer)
    except Exception as err:
        raise refusal(err) from err
    return GateViewOut(**dict(view), requirements=GateRequirementsOut.model_validate(gate.definition))


async def _gate_command(
    request: Request,
    session: AsyncSession,
    client: Client,
    user: User,
    project_id: str,
    gate_no: int,
    update: Any,
    arg: Any,
    action: str,
) -> Any:
    project = await project_for(request, session, user, project_id)
    gate = await open_round(session, project, gate_no)
    return await send_update(
        request,
        client,
        gate.workflow_id or "",
        update,
        arg,
        actor=user.username,
        action=action,
        target=f"gate:{project_id}/{gate_no}",
    )


@router.post("/projects/{project_id}/gates/{gate_no}/evidence", response_model=GateView, responses=COMMAND)
async def submit_evidence(
    project_id: str,
    gate_no: GateNo,
    body: EvidenceIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> GateView:
    """The gate's evidence package (claimed TRL, deliverables, evidence per must-meet criterion); it opens the review."""
    evidence = EvidenceInput(submitted_by=user.username, **body.model_dump())
    result: GateView = await _gate_command(
        request,
        session,
        client,
        user,
        project_id,
        gate_no,
        GateReviewWorkflow.submit_evidence,
        evidence,
        "gate_evidence",
    )
    return result


@router.post("/projects/{project_id}/gates/{gate_no}/open", response_model=GateView, responses=COMMAND)
async def open_review(
    project_id: str, gate_no: GateNo, request: Request, session: SessionDep, client: ClientDep, user: PmUser
) -> GateView:
    """Open the review without waiting for the evidence package."""
    result: GateView = await _gate_command(
        request,
        session,
        client,
        user,
        project_id,
        gate_no,
        GateReviewWorkflow.open_review,
        OpenReviewInput(opened_by=user.username),
        "gate_open",
    )
    return result


async def _registered_reviewer(session: AsyncSession, username: str) -> None:
    reviewer = await session.get(User, username)
    if reviewer is None or Role.REVIEWER.value not in reviewer.roles:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{username!r} is not a registered reviewer")


@router.post("/projects/{project_id}/gates/{gate_no}/invitations", response_model=GateView, responses=COMMAND)
async def invite(
    project_id: str,
    gate_no: GateNo,
    body: InviteIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> GateView:
    """Invite a reviewer to fill a vacancy (after a decline or a recusal)."""
    await _registered_reviewer(session, body.reviewer)
    result: GateView = await _gate_command(
        request,
        session,
        client,
        user,
        project_id,
        gate_no,
        GateReviewWorkflow.invite,
        InviteInput(invited_by=user.username, reviewer=body.reviewer),
        "gate_invite",
    )
    return result


@router.post("/projects/{project_id}/gates/{gate_no}/reassign", response_model=GateView, responses=COMMAND)
async def reassign(
    project_id: str,
    gate_no: GateNo,
    body: ReassignIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> GateView:
    """Replace a silent reviewer."""
    await _registered_reviewer(session, body.to_reviewer)
    result: GateView = await _gate_command(
        request,
        session,
        client,
        user,
        project_id,
        gate_no,
        GateReviewWorkflow.reassign,
        ReassignInput(requested_by=user.username, **body.model_dump()),
        "gate_reassign",
    )
    return result


@router.post("/projects/{project_id}/gates/{gate_no}/deadline", response_model=GateView, responses=COMMAND)
async def extend_deadline(
    project_id: str,
    gate_no: GateNo,
    body: ExtendIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> GateView:
    """Extend the review deadline; reminders and escalation move with it."""
    result: GateView = await _gate_command(
        request,
        session,
        client,
        user,
        project_id,
        gate_no,
        GateReviewWorkflow.extend_deadline,
        ExtendDeadlineInput(requested_by=user.username, extra_days=body.extra_days),
        "gate_deadline",
    )
    return result


async def _carried_out(client: Client, project: Project, outcome: GateOutcome) -> ProjectSnapshot:
    """Wait until the project workflow has carried the decision out (a hold begins, or a Kill's
    stop ends it): its Update returns then, with the project as it is."""
    handle = client.get_workflow_handle(project.workflow_id)
    try:
        return await handle.execute_update(
            ProjectWorkflow.decision_carried_out, DecisionRef(gate_no=outcome.gate_no, round=outcome.round)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    except WorkflowUpdateFailedError:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            raise
    # The workflow completed first (a Kill's or a concurrent stop's): its last state says how it ended.
    snap: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
    return snap


@router.post("/projects/{project_id}/gates/{gate_no}/decision", response_model=GateDecisionOut, responses=COMMAND)
async def decide_gate(
    project_id: str,
    gate_no: GateNo,
    body: DecisionIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> GateDecisionOut:
    """The programme manager's decision: go, conditional_go, hold, recycle or kill."""
    project = await project_for(request, session, user, project_id)
    if project.programme_manager != user.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager decides its gates")
    gate = await session.get(Gate, (project_id, gate_no))
    target = f"gate:{project_id}/{gate_no}"
    if gate is not None and gate.status == "open" and gate.workflow_id is None:
        # A gate of the first design: its decision goes to the project workflow itself.
        legacy = DecisionInput(
            gate_no=gate_no, decision=body.decision, decided_by=user.username, justification=body.justification
        )
        result = await send_update(
            request,
            client,
            project.workflow_id,
            ProjectWorkflow.decide,
            legacy,
            actor=user.username,
            action="decide",
            target=target,
        )
        return GateDecisionOut(
            gate_no=gate_no,
            round=1,
            decision=body.decision,
            status=result.status.value,
            trl=result.trl,
            stage=result.next_stage,
            on_hold=False,
            waiting_for="",
        )
    gate = await open_round(session, project, gate_no)
    decision = GateDecisionInput(decided_by=user.username, **body.model_dump())
    outcome: GateOutcome = await send_update(
        request,
        client,
        gate.workflow_id or "",
        GateReviewWorkflow.decide,
        decision,
        actor=user.username,
        action="decide",
        target=target,
        decision=body.decision.value,
    )
    snap = await _carried_out(client, project, outcome)
    return GateDecisionOut(
        gate_no=gate_no,
        round=outcome.round,
        decision=body.decision,
        status=snap.status.value,
        trl=snap.trl,
        stage=snap.stage_name,
        on_hold=snap.on_hold,
        waiting_for=snap.waiting_for,
    )


async def _project_command(
    request: Request,
    session: AsyncSession,
    client: Client,
    user: User,
    project_id: str,
    update: Any,
    arg: Any,
    action: str,
) -> Any:
    project = await project_for(request, session, user, project_id)
    return await send_update(
        request,
        client,
        project.workflow_id,
        update,
        arg,
        actor=user.username,
        action=action,
        target=f"project:{project_id}",
    )


@router.post("/projects/{project_id}/resume", response_model=ProjectSnapshot, responses=COMMAND)
async def resume(
    project_id: str, body: NoteIn, request: Request, session: SessionDep, client: ClientDep, user: PmUser
) -> ProjectSnapshot:
    """Resume a project on hold."""
    arg = ResumeInput(requested_by=user.username, note=body.note)
    result: ProjectSnapshot = await _project_command(
        request, session, client, user, project_id, ProjectWorkflow.resume, arg, "resume"
    )
    return result


@router.post("/projects/{project_id}/conditions/verify", response_model=ProjectSnapshot, responses=COMMAND)
async def verify_conditions(
    project_id: str, body: NoteIn, request: Request, session: SessionDep, client: ClientDep, user: PmUser
) -> ProjectSnapshot:
    """Confirm that a Conditional Go's conditions are met."""
    arg = VerifyConditionsInput(requested_by=user.username, note=body.note)
    result: ProjectSnapshot = await _project_command(
        request, session, client, user, project_id, ProjectWorkflow.verify_conditions, arg, "verify_conditions"
    )
    return result
