"""The ministry liaison's hand-offs: the inbox of hand-offs offered to the liaison's ministry, and
each hand-off's package (the stored document and its SHA-256) with the two answers, accept (naming
the receiving programme) or decline (with a reason). For the project's programme manager: re-route
a declined or overdue hand-off to another ministry, and on the project's hand-offs page conclude
them or start a demonstration hand-off. The reads and the commands are the API's own
(api/routes/handoffs.py, services/handoffs.py): the same visibility, checks, audit and refusals."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from api.context import project_context, project_for
from api.deps import has_role, release_connection, require_roles
from api.routes import handoffs as api_handoffs
from api.schemas.handoffs import AcceptIn, ConcludeIn, DeclineIn, DemoHandoffIn, RerouteIn
from domain.files import AttachedTo
from domain.handoff import HandoffBrief, HandoffStatus
from domain.roles import Role
from services import files
from services.choices import ministry_choices
from services.handoffs import handoff_inbox, handoffs_of_project
from storage.models import Document
from web.pages import PageViewer, Viewer, form_fields, page_session, posted, render, withheld_closed

router = APIRouter()
_pm = require_roles(Role.PM, Role.ADMIN)  # the API's PmUser
_project_pm = project_for(Role.PM, Role.ADMIN, pm_only=True)  # the API's ProjectPm
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)


@router.get("/handoffs", response_class=HTMLResponse)
async def handoffs(request: Request, viewer: PageViewer, page: int = Query(1, ge=1, le=100_000)) -> Response:
    async with page_session(request) as read:
        found = await handoff_inbox(read, viewer.user, page)
        withheld = await withheld_closed(request, read, viewer.user, {r.project_id for r in found.rows}, "handoffs")
    rows = [r for r in found.rows if r.project_id not in withheld]
    return render(request, "handoffs.html", viewer, found=found, rows=rows)


def _package_body(content: str) -> Markup:
    """The stored package's body, as rendered (and autoescaped) when the hand-off was offered."""
    found = _BODY.search(content)
    return Markup(found.group(1) if found else "")  # our own stored document, autoescaped when rendered


async def _show(
    request: Request,
    viewer: Viewer,
    handoff_id: str,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refusal: Any = None,
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            handoff, ctx = await api_handoffs.reachable_handoff(request, read, viewer.user, handoff_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        document = await read.get(Document, handoff.document_id)
        status = HandoffStatus(handoff.status)
        reroutable = (
            ctx.project.programme_manager == viewer.user.username
            and has_role(viewer.user, Role.PM)
            and handoff.rerouted_to is None  # once re-routed, the new hand-off is the one to follow
            and (status == HandoffStatus.DECLINED or (status == HandoffStatus.PENDING and handoff.escalated_at))
        )
        ministries = await ministry_choices(read, excluding=handoff.ministry) if reroutable else []
    answerable = (
        HandoffStatus(handoff.status) == HandoffStatus.PENDING
        and has_role(viewer.user, Role.MINISTRY)
        and viewer.user.ministry == handoff.ministry
    )
    return render(
        request,
        "handoff.html",
        viewer,
        status_code=status_code,
        handoff=handoff,
        project=ctx.project,
        document=document,
        package=_package_body(document.content) if document else Markup(""),
        answerable=answerable,
        reroutable=reroutable,
        ministries=ministries,
        form=form or {},
        errors=errors or {},
        refusal=refusal,
    )


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
async def handoff_page(handoff_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _show(request, viewer, handoff_id)


def _field_errors(err: ValidationError) -> dict[str, str]:
    return {str(e["loc"][0]) if e["loc"] else "form": str(e["msg"]) for e in err.errors()}


async def _answer(request: Request, viewer: Viewer, handoff_id: str, accept: bool) -> Response:
    form = await request.form()
    values = form_fields(form)
    required = "receiving_programme" if accept else "reason"
    if not values.get(required, "").strip():
        return await _show(request, viewer, handoff_id, 422, values, {required: "required"})
    body: BaseModel
    try:
        if accept:
            body = AcceptIn(receiving_programme=values[required], note=values.get("note", ""))
        else:
            body = DeclineIn(reason=values[required])
    except ValidationError as err:
        return await _show(request, viewer, handoff_id, 422, values, _field_errors(err))
    async with page_session(request) as read:
        try:
            user = await require_roles(Role.MINISTRY)(viewer.user)  # the API's MinistryUser check
            if isinstance(body, AcceptIn):
                await api_handoffs.accept_handoff(handoff_id, body, request, read, user)
            else:
                assert isinstance(body, DeclineIn)
                await api_handoffs.decline_handoff(handoff_id, body, request, read, user)
        except HTTPException as err:
            return await _show(request, viewer, handoff_id, err.status_code, values, refusal=err.detail)
    return RedirectResponse(f"/app/handoffs/{handoff_id}", status_code=303)


@router.post("/handoffs/{handoff_id}/accept", response_class=HTMLResponse)
async def accept(handoff_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _answer(request, viewer, handoff_id, accept=True)


@router.post("/handoffs/{handoff_id}/decline", response_class=HTMLResponse)
async def decline(handoff_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _answer(request, viewer, handoff_id, accept=False)


@router.post("/handoffs/{handoff_id}/reroute", response_class=HTMLResponse)
async def reroute(handoff_id: str, request: Request, viewer: PageViewer) -> Response:
    values = await posted(request)
    try:
        body = RerouteIn(to_ministry=values.get("to_ministry", ""), note=values.get("note", ""))
    except ValidationError as err:
        return await _show(request, viewer, handoff_id, 422, values, _field_errors(err))
    async with page_session(request) as read:
        try:
            user = await _pm(viewer.user)
            await api_handoffs.reroute_handoff(handoff_id, body, request, read, user)
        except HTTPException as err:
            return await _show(request, viewer, handoff_id, err.status_code, values, refusal=err.detail)
    return RedirectResponse(f"/app/handoffs/{handoff_id}", status_code=303)


# ---- the project's hand-offs: its programme manager concludes them or starts a demonstration one --


async def _show_project(
    request: Request,
    viewer: Viewer,
    project_id: str,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refusal: Any = None,
) -> Response:
    await release_connection(request)
    async with page_session(request) as read:
        try:
            await _pm(viewer.user)  # a role refusal names no project
            ctx = await project_context(project_id, request, read, viewer.user)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        rows = await handoffs_of_project(read, project_id)
        ministries = await ministry_choices(read)
        annexes = await files.attached(read, project_id, AttachedTo.HANDOFF)
    return render(
        request,
        "project_handoffs.html",
        viewer,
        status_code=status_code,
        project=ctx.project,
        rows=rows,
        ministries=ministries,
        annexes=annexes,
        max_mb=request.app.state.settings.max_upload_bytes // (1024 * 1024),
        form=form or {},
        errors=errors or {},
        refusal=refusal,
    )


@router.get("/projects/{project_id}/handoffs", response_class=HTMLResponse)
async def project_handoffs(project_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _show_project(request, viewer, project_id)


async def _project_command(request: Request, viewer: Viewer, project_id: str, command: str) -> Response:
    values = await posted(request)
    body: BaseModel
    try:
        if command == "demo":
            lines = [line.strip() for line in values.get("deliverables", "").splitlines() if line.strip()]
            brief = HandoffBrief(
                purpose=values.get("purpose", ""),
                results_summary=values.get("results_summary", ""),
                deliverables=lines,
            )
            body = DemoHandoffIn(ministry=values.get("ministry", ""), brief=brief)
        else:
            body = ConcludeIn(note=values.get("note", ""))
    except ValidationError as err:
        return await _show_project(request, viewer, project_id, 422, values, _field_errors(err))
    async with page_session(request) as read:
        try:
            await _pm(viewer.user)
            ctx = await _project_pm(viewer.user, await project_context(project_id, request, read, viewer.user))
            if isinstance(body, DemoHandoffIn):
                await api_handoffs.demo_handoff(body, ctx)
            else:
                assert isinstance(body, ConcludeIn)
                await api_handoffs.conclude_handoffs(body, ctx)
        except HTTPException as err:
            return await _show_project(request, viewer, project_id, err.status_code, values, refusal=err.detail)
    return RedirectResponse(f"/app/projects/{project_id}/handoffs?done={command}", status_code=303)


@router.post("/projects/{project_id}/demo-handoffs", response_class=HTMLResponse)
async def demo_handoff(project_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _project_command(request, viewer, project_id, "demo")


@router.post("/projects/{project_id}/handoffs/conclude", response_class=HTMLResponse)
async def conclude(project_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _project_command(request, viewer, project_id, "concluded")
