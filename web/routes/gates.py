"""The programme manager's gates: the rounds waiting on them, and a round's page (panel progress,
reviews, the panel's recommendation) with its forms: the evidence package or opening the review,
filling the panel's vacancies (invite, reassign, a later deadline), the decision, and afterwards
confirming a Conditional Go's conditions. Views and commands are the API's own
(api/routes/gates.py): the same access, rules, audit and refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api.context import ProjectContext, project_context, project_for
from api.deps import release_connection, require_roles
from api.params import GateNo
from api.routes import gates as api_gates
from api.schemas.gates import DecisionIn, EvidenceIn, ExtendIn, InviteIn, NoteIn, ReassignIn
from domain.files import AttachedTo
from domain.gate_review import ACTIVE_MEMBER, GateStatus, MemberStatus
from domain.project import Decision, ProjectSnapshot
from domain.roles import Role
from services import files
from services.choices import reviewer_choices
from services.gates import open_gates_of
from storage.models import Gate
from web.pages import PageViewer, Viewer, page_session, posted, render, validation_reasons, withheld_closed
from workflows.project import ProjectWorkflow

router = APIRouter()
_pm = require_roles(Role.PM, Role.ADMIN)
_project_pm = project_for(Role.PM, Role.ADMIN, pm_only=True)
EVIDENCE_PREFIX = "evidence_"  # a must-meet criterion's evidence field: evidence_<key>


@router.get("/gates", response_class=HTMLResponse)
async def my_gates(request: Request, viewer: PageViewer, page: int = Query(1, ge=1, le=100_000)) -> Response:
    async with page_session(request) as read:
        found = await open_gates_of(read, viewer.user, page)
        # A PM whose clearance no longer covers a closed project loses it from the list too.
        withheld = await withheld_closed(request, read, viewer.user, {g.project_id for g in found.rows}, "gates")
    rows = [g for g in found.rows if g.project_id not in withheld]
    return render(request, "gates.html", viewer, gates=found, rows=rows)


async def _context(request: Request, read: Any, viewer: Viewer, project_id: str) -> ProjectContext:
    await _pm(viewer.user)  # a role refusal names no project
    return await project_context(project_id, request, read, viewer.user)


async def _pm_context(request: Request, read: Any, viewer: Viewer, project_id: str) -> ProjectContext:
    """What the API's `ProjectPm` dependency gives its commands: the project's PM (or an admin)."""
    return await _project_pm(viewer.user, await _context(request, read, viewer, project_id))


async def _show(
    request: Request, viewer: Viewer, project_id: str, gate_no: int, status_code: int = 200, **extra: Any
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            ctx = await _context(request, read, viewer, project_id)
            title, pm = ctx.project.title, ctx.project.programme_manager
            reviewers = await reviewer_choices(read, excluding={pm})
            view = await api_gates.view_gate(gate_no, ctx)
            attached = await files.attached(read, project_id, AttachedTo.EVIDENCE, str(gate_no))
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    # Whoever has sat on this round's panel cannot be invited again (the workflow's rule).
    seated = {m.reviewer for m in view.members}
    candidates = [c for c in reviewers if c.value not in seated]
    reviewed = {r.reviewer for r in view.reviews}
    return render(
        request,
        "gate.html",
        viewer,
        status_code=status_code,
        project_id=project_id,
        project_title=title,
        view=view,
        decisions=list(Decision),
        candidates=candidates,
        silent=[m.reviewer for m in view.members if m.status in ACTIVE_MEMBER and m.reviewer not in reviewed],
        unfilled=[m for m in view.members if m.status in (MemberStatus.DECLINED, MemberStatus.RECUSED)],
        form=extra.get("form", {}),
        refusal=extra.get("refusal"),
        acted=extra.get("acted"),
        files=attached,
        max_mb=request.app.state.settings.max_upload_bytes // (1024 * 1024),
    )


@router.get("/projects/{project_id}/gates", response_class=HTMLResponse)
async def project_gates(project_id: str, request: Request, viewer: PageViewer) -> Response:
    """The project's gate under review (where a gate notice's work is done), else the project."""
    async with page_session(request) as read:
        try:
            await _context(request, read, viewer, project_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        gate_no = await read.scalar(
            select(Gate.gate_no)
            .where(Gate.project_id == project_id, Gate.status == GateStatus.OPEN, Gate.workflow_id.is_not(None))
            .order_by(Gate.gate_no)
            .limit(1)
        )
    if gate_no is None:
        return RedirectResponse(f"/app/projects/{project_id}", status_code=303)
    return RedirectResponse(f"/app/projects/{project_id}/gates/{gate_no}", status_code=303)


@router.get("/projects/{project_id}/gates/{gate_no}", response_class=HTMLResponse)
async def gate_page(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    return await _show(request, viewer, project_id, gate_no, acted=request.query_params.get("acted"))


async def _command(
    request: Request,
    viewer: Viewer,
    project_id: str,
    gate_no: int,
    form: dict[str, str],
    build: Callable[[], BaseModel | None],
    call: Callable[[Any, ProjectContext], Awaitable[Any]],
    done: str,
) -> Response:
    """Parse the form into the API's body, call the API's route function with the page's
    ProjectContext, and redirect; a bad form or a refusal re-renders the page with its reason."""
    try:
        body = build()
    except ValidationError as err:
        return await _show(request, viewer, project_id, gate_no, 422, form=form, refusal=validation_reasons(err))
    async with page_session(request) as read:
        try:
            ctx = await _pm_context(request, read, viewer, project_id)
            await call(body, ctx)
        except HTTPException as err:
            return await _show(request, viewer, project_id, gate_no, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(done, status_code=303)


def _number(text: str) -> int | str:
    """A form's digits as the number the API's strict integer fields take; anything else as typed,
    for the API's own validation to refuse by name."""
    return int(text) if text.isascii() and text.isdecimal() else text


def _gate_url(project_id: str, gate_no: int, acted: str) -> str:
    return f"/app/projects/{project_id}/gates/{gate_no}?acted={acted}"


def _evidence(form: dict[str, str]) -> EvidenceIn:
    """The form as the API's body: deliverables one per line, a field per must-meet criterion."""
    return EvidenceIn.model_validate(
        {
            "claimed_trl": _number(form.get("claimed_trl", "").strip()),
            "deliverables": [line.strip() for line in form.get("deliverables", "").splitlines() if line.strip()],
            "criteria_evidence": {
                k.removeprefix(EVIDENCE_PREFIX): v.strip()
                for k, v in form.items()
                if k.startswith(EVIDENCE_PREFIX) and v.strip()
            },
        }
    )


@router.post("/projects/{project_id}/gates/{gate_no}/evidence", response_class=HTMLResponse)
async def submit_evidence(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: _evidence(form),
        lambda body, ctx: api_gates.submit_evidence(gate_no, body, ctx),
        _gate_url(project_id, gate_no, "evidence"),
    )


@router.post("/projects/{project_id}/gates/{gate_no}/open", response_class=HTMLResponse)
async def open_review(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: None,
        lambda _body, ctx: api_gates.open_review(gate_no, ctx),
        _gate_url(project_id, gate_no, "opened"),
    )


@router.post("/projects/{project_id}/gates/{gate_no}/invitations", response_class=HTMLResponse)
async def invite(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: InviteIn(reviewer=form.get("reviewer", "")),
        lambda body, ctx: api_gates.invite(gate_no, body, ctx),
        _gate_url(project_id, gate_no, "invited"),
    )


@router.post("/projects/{project_id}/gates/{gate_no}/reassign", response_class=HTMLResponse)
async def reassign(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: ReassignIn(from_reviewer=form.get("from_reviewer", ""), to_reviewer=form.get("to_reviewer", "")),
        lambda body, ctx: api_gates.reassign(gate_no, body, ctx),
        _gate_url(project_id, gate_no, "reassigned"),
    )


def _days(form: dict[str, str]) -> ExtendIn:
    return ExtendIn.model_validate({"extra_days": _number(form.get("extra_days", "").strip())})


@router.post("/projects/{project_id}/gates/{gate_no}/deadline", response_class=HTMLResponse)
async def extend_deadline(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: _days(form),
        lambda body, ctx: api_gates.extend_deadline(gate_no, body, ctx),
        _gate_url(project_id, gate_no, "extended"),
    )


def _decision(form: dict[str, str]) -> DecisionIn:
    """The form as the API's body; empty optional fields are absent, conditions one per line."""
    data: dict[str, Any] = {
        "decision": form.get("decision", ""),
        "justification": form.get("justification", ""),
        "lessons": form.get("lessons", ""),
        "conditions": [line.strip() for line in form.get("conditions", "").splitlines() if line.strip()],
    }
    for key in ("conditions_due_days", "recycle_days", "recycle_budget"):
        if value := form.get(key, "").strip():
            data[key] = _number(value)
    return DecisionIn.model_validate(data)


@router.post("/projects/{project_id}/gates/{gate_no}/decision", response_class=HTMLResponse)
async def decide(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    return await _command(
        request,
        viewer,
        project_id,
        gate_no,
        form,
        lambda: _decision(form),
        lambda body, ctx: api_gates.decide_gate(gate_no, body, ctx),
        f"/app/projects/{project_id}",
    )


# ---- after a Conditional Go: its conditions confirmed -------------------------------------------


async def _show_conditions(
    request: Request, viewer: Viewer, project_id: str, status_code: int = 200, **extra: Any
) -> Response:
    await release_connection(request)
    async with page_session(request) as read:
        try:
            ctx = await _context(request, read, viewer, project_id)
            title = ctx.project.title
            snapshot: ProjectSnapshot | None = None
            if ctx.temporal is not None:
                try:
                    snapshot = await ctx.workflow.query(ProjectWorkflow.status)
                except (RPCError, WorkflowQueryFailedError):  # the form still works; the API says why
                    snapshot = None
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    return render(
        request,
        "conditions.html",
        viewer,
        status_code=status_code,
        project_id=project_id,
        project_title=title,
        snapshot=snapshot,
        form=extra.get("form", {}),
        refusal=extra.get("refusal"),
    )


@router.get("/projects/{project_id}/conditions", response_class=HTMLResponse)
async def conditions_page(project_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _show_conditions(request, viewer, project_id)


@router.post("/projects/{project_id}/conditions/verify", response_class=HTMLResponse)
async def verify_conditions(project_id: str, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    try:
        body = NoteIn(note=form.get("note", ""))
    except ValidationError as err:
        return await _show_conditions(request, viewer, project_id, 422, form=form, refusal=validation_reasons(err))
    async with page_session(request) as read:
        try:
            ctx = await _pm_context(request, read, viewer, project_id)
            await api_gates.verify_conditions(body, ctx)
        except HTTPException as err:
            return await _show_conditions(request, viewer, project_id, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(f"/app/projects/{project_id}", status_code=303)
