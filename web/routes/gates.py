"""The programme manager's gates: the rounds waiting on them, and a round's page (panel progress,
reviews, the panel's recommendation) with the decision form. Views and commands are the API's
own (api/routes/gates.py): the same access, rules, audit and refusals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.context import ProjectContext, project_context
from api.deps import release_connection, require_roles
from api.params import GateNo
from api.routes import gates as api_gates
from api.schemas.gates import DecisionIn
from domain.project import Decision
from domain.roles import Role
from services.gates import open_gates_of
from web.pages import PageViewer, Viewer, page_session, render, withheld_closed

router = APIRouter()
_pm = require_roles(Role.PM, Role.ADMIN)


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


async def _show(
    request: Request, viewer: Viewer, project_id: str, gate_no: int, status_code: int = 200, **extra: Any
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            ctx = await _context(request, read, viewer, project_id)
            view = await api_gates.view_gate(gate_no, ctx)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        title = ctx.project.title
    return render(
        request,
        "gate.html",
        viewer,
        status_code=status_code,
        project_id=project_id,
        project_title=title,
        view=view,
        decisions=list(Decision),
        form=extra.get("form", {}),
        refusal=extra.get("refusal"),
        decided=extra.get("decided"),
    )


@router.get("/projects/{project_id}/gates/{gate_no}", response_class=HTMLResponse)
async def gate_page(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    return await _show(request, viewer, project_id, gate_no)


def _decision(form: dict[str, str]) -> DecisionIn:
    """The form as the API's body; empty optional fields are absent, conditions one per line."""
    data: dict[str, Any] = {
        "decision": form.get("decision", ""),
        "justification": form.get("justification", ""),
        "lessons": form.get("lessons", ""),
        "conditions": [line.strip() for line in form.get("conditions", "").splitlines() if line.strip()],
    }
    for key in ("conditions_due_days", "recycle_days", "recycle_budget"):
        if form.get(key, "").strip():
            data[key] = form[key].strip()
    return DecisionIn.model_validate(data)


@router.post("/projects/{project_id}/gates/{gate_no}/decision", response_class=HTMLResponse)
async def decide(project_id: str, gate_no: GateNo, request: Request, viewer: PageViewer) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrftoken"}
    try:
        body = _decision(form)
    except ValidationError as err:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        return await _show(request, viewer, project_id, gate_no, 422, form=form, refusal=reasons)
    async with page_session(request) as read:
        try:
            ctx = await _context(request, read, viewer, project_id)
            await api_gates.decide_gate(gate_no, body, ctx)
        except HTTPException as err:
            return await _show(request, viewer, project_id, gate_no, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(f"/app/gates?decided={project_id}", status_code=303)
