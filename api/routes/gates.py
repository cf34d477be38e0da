"""Gate rounds: the programme manager runs them; reviewers see them with independence applied.
A decision's consequences (a hold, a Conditional Go's conditions) are answered here too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.context import ProjectContext, ProjectCtx, ProjectPm
from api.deps import get_client, has_role, release_connection
from api.errors import AUTH, refusal, responses
from api.params import GateNo
from api.schemas.gates import (
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
from domain.files import AttachedTo
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
from domain.handoff import HandoffKind
from domain.project import DecisionRef, ProjectSnapshot, ResumeInput, VerifyConditionsInput
from domain.roles import Role
from services import files
from storage.models import Gate, Project, User
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow

router = APIRouter(prefix="/projects/{project_id}/gates", tags=["gates"])
# What follows a decision: a project on hold resumed, a Conditional Go's conditions confirmed.
after_decision = APIRouter(prefix="/projects/{project_id}", tags=["gates"])
COMMAND = {**AUTH, **responses(404, 409, 422, 503)}


async def open_round(session: AsyncSession, project: Project, gate_no: int) -> Gate:
    gate = await session.get(Gate, (project.id, gate_no))
    if gate is None or gate.status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"gate {gate_no} of {project.id} is not under review")
    if gate.workflow_id is None:
        # A gate of the first design (no review round of its own): nothing serves it any more.
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"gate {gate_no} of {project.id} predates gate rounds: it can no longer be reviewed or decided",
        )
    return gate


@router.get("/{gate_no}", response_model=GateViewOut, responses={**AUTH, **responses(404, 409)})
async def view_gate(gate_no: GateNo, ctx: ProjectCtx) -> GateViewOut:
    """The gate's current round as this user may see it: material only for cleared panel members,
    other reviews only after submitting one's own; and what the gate requires (deliverables, criteria)."""
    gate = await open_round(ctx.session, ctx.project, gate_no)
    overseer = ctx.is_pm or has_role(ctx.user, Role.OPS)
    viewer = ctx.project.programme_manager if overseer else ctx.user.username
    client = get_client(ctx.request)
    await release_connection(ctx.request)
    try:
        view: GateView = await client.get_workflow_handle(gate.workflow_id or "").query(GateReviewWorkflow.view, viewer)
    except RPCError as err:  # not running, or Temporal unreachable; anything else is a bug: a 500
        raise refusal(err) from err
    return GateViewOut(**dict(view), requirements=GateRequirementsOut.model_validate(gate.definition))


async def _gate_command(ctx: ProjectContext, gate_no: int, update: Any, arg: Any, action: str, **detail: Any) -> Any:
    gate = await open_round(ctx.session, ctx.project, gate_no)
    target = f"gate:{ctx.project.id}/{gate_no}"
    return await ctx.command(update, arg, action=action, target=target, workflow_id=gate.workflow_id or "", **detail)


@router.post("/{gate_no}/evidence", response_model=GateView, responses=COMMAND)
async def submit_evidence(gate_no: GateNo, body: EvidenceIn, ctx: ProjectPm) -> GateView:
    """The gate's evidence package (claimed TRL, deliverables, evidence per must-meet criterion); it opens the review."""
    attachments = await files.refs(ctx.session, ctx.project.id, AttachedTo.EVIDENCE, str(gate_no))
    evidence = EvidenceInput(submitted_by=ctx.user.username, attachments=attachments, **body.model_dump())
    result: GateView = await _gate_command(ctx, gate_no, GateReviewWorkflow.submit_evidence, evidence, "gate_evidence")
    return result


@router.post("/{gate_no}/open", response_model=GateView, responses=COMMAND)
async def open_review(gate_no: GateNo, ctx: ProjectPm) -> GateView:
    """Open the review without waiting for the evidence package."""
    arg = OpenReviewInput(opened_by=ctx.user.username)
    result: GateView = await _gate_command(ctx, gate_no, GateReviewWorkflow.open_review, arg, "gate_open")
    return result


async def _registered_reviewer(session: AsyncSession, username: str) -> None:
    reviewer = await session.get(User, username)
    if reviewer is None or Role.REVIEWER.value not in reviewer.roles:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{username!r} is not a registered reviewer")


@router.post("/{gate_no}/invitations", response_model=GateView, responses=COMMAND)
async def invite(gate_no: GateNo, body: InviteIn, ctx: ProjectPm) -> GateView:
    """Invite a reviewer to fill a vacancy (after a decline or a recusal)."""
    await _registered_reviewer(ctx.session, body.reviewer)
    arg = InviteInput(invited_by=ctx.user.username, reviewer=body.reviewer)
    result: GateView = await _gate_command(ctx, gate_no, GateReviewWorkflow.invite, arg, "gate_invite")
    return result


@router.post("/{gate_no}/reassign", response_model=GateView, responses=COMMAND)
async def reassign(gate_no: GateNo, body: ReassignIn, ctx: ProjectPm) -> GateView:
    """Replace a silent reviewer."""
    await _registered_reviewer(ctx.session, body.to_reviewer)
    arg = ReassignInput(requested_by=ctx.user.username, **body.model_dump())
    result: GateView = await _gate_command(ctx, gate_no, GateReviewWorkflow.reassign, arg, "gate_reassign")
    return result


@router.post("/{gate_no}/deadline", response_model=GateView, responses=COMMAND)
async def extend_deadline(gate_no: GateNo, body: ExtendIn, ctx: ProjectPm) -> GateView:
    """Extend the review deadline; reminders and escalation move with it."""
    arg = ExtendDeadlineInput(requested_by=ctx.user.username, extra_days=body.extra_days)
    result: GateView = await _gate_command(ctx, gate_no, GateReviewWorkflow.extend_deadline, arg, "gate_deadline")
    return result


async def _carried_out(client: Client, project: Project, outcome: GateOutcome) -> ProjectSnapshot:
    """Wait until the project workflow has carried the decision out (a hold begins, or a Kill's
    stop ends it): its Update returns then, with the project as it is."""
    try:
        return await _wait_carried_out(client.get_workflow_handle(project.workflow_id), outcome)
    except (RPCError, WorkflowUpdateFailedError, WorkflowQueryFailedError) as err:
        # The decision stands (the round recorded it): say so, rather than a 500 that reads as lost.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the decision was recorded, but the project's state after it could not be read: {err}",
        ) from err


async def _wait_carried_out(handle: WorkflowHandle[Any, Any], outcome: GateOutcome) -> ProjectSnapshot:
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


@router.post("/{gate_no}/decision", response_model=GateDecisionOut, responses=COMMAND)
async def decide_gate(gate_no: GateNo, body: DecisionIn, ctx: ProjectPm) -> GateDecisionOut:
    """The programme manager's decision: go, conditional_go, hold, recycle or kill."""
    if ctx.project.programme_manager != ctx.user.username:  # an admin commands, but does not decide
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the project's programme manager decides its gates")
    decision = GateDecisionInput(decided_by=ctx.user.username, **body.model_dump())
    if decision.handoff is not None:  # the package names the annexes attached by now, by hash
        annexes = await files.refs(ctx.session, ctx.project.id, AttachedTo.HANDOFF, HandoffKind.FINAL.value)
        decision.handoff = decision.handoff.model_copy(update={"annexes": annexes})
    outcome: GateOutcome = await _gate_command(
        ctx, gate_no, GateReviewWorkflow.decide, decision, "decide", decision=body.decision.value
    )
    snap = await _carried_out(get_client(ctx.request), ctx.project, outcome)
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


@after_decision.post("/resume", response_model=ProjectSnapshot, responses=COMMAND)
async def resume(body: NoteIn, ctx: ProjectPm) -> ProjectSnapshot:
    """Resume a project on hold."""
    arg = ResumeInput(requested_by=ctx.user.username, note=body.note)
    result: ProjectSnapshot = await ctx.command(ProjectWorkflow.resume, arg, action="resume")
    return result


@after_decision.post("/conditions/verify", response_model=ProjectSnapshot, responses=COMMAND)
async def verify_conditions(body: NoteIn, ctx: ProjectPm) -> ProjectSnapshot:
    """Confirm that a Conditional Go's conditions are met."""
    arg = VerifyConditionsInput(requested_by=ctx.user.username, note=body.note)
    result: ProjectSnapshot = await ctx.command(ProjectWorkflow.verify_conditions, arg, action="verify_conditions")
    return result
