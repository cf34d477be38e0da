"""Need-to-know grants per closed project: the closed projects with their labels, a project's
grants (in force and revoked), grant with a reason, revoke. services/need_to_know.py decides, as
for the API. A project's title shows only where the administrator may read the project (the one
access policy, audited); its id and label are what a security officer administers."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import visible
from domain.security import Level
from services import need_to_know
from services.need_to_know import GrantIn
from storage import queries
from web.pages import PageViewer, Viewer, page_session, posted, render
from web.routes.admin.common import FormState, refused

router = APIRouter()


@router.get("/grants", response_class=HTMLResponse)
async def closed_projects(request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    async with page_session(request) as read:
        projects = await need_to_know.closed_projects(read)
        titles = await _titles(request, read, viewer, {p.id for p in projects})
    return render(request, "admin_grants.html", viewer, projects=projects, titles=titles)


async def _titles(request: Request, read: AsyncSession, viewer: Viewer, ids: set[str]) -> dict[str, str]:
    """The titles of those closed projects the viewer may read (every decision audited)."""
    found = await queries.projects_by_id(read, ids)
    readable = await visible(request, read, viewer.user, list(found.values()), "admin_grants")
    return {p.id: p.title for p in readable}


async def _show(
    request: Request, viewer: Viewer, project_id: str, status_code: int = 200, form: FormState | None = None
) -> Response:
    async with page_session(request) as read:
        try:
            rows = await need_to_know.grants(read, project_id)
            project = await need_to_know.closed_project(read, project_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        label = (Level(project.label_level).name, list(project.label_compartments or []))
        titles = await _titles(request, read, viewer, {project_id})
    form = form or FormState()
    return render(
        request,
        "admin_project_grants.html",
        viewer,
        status_code=status_code,
        project_id=project_id,
        title=titles.get(project_id),
        label=label,
        in_force=[g for g in rows if g.revoked_at is None],
        revoked=[g for g in rows if g.revoked_at is not None],
        values=form.values,
        errors=form.errors,
        reasons=form.reasons,
        done=request.query_params.get("done"),
        action=f"/app/admin/grants/{quote(project_id)}",
        here=f"/app/admin/grants/{quote(project_id)}",
    )


@router.get("/grants/{project_id}", response_class=HTMLResponse)
async def project_grants(project_id: str, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    return await _show(request, viewer, project_id)


@router.post("/grants/{project_id}", response_class=HTMLResponse)
async def grant(project_id: str, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = await posted(request)
    form = FormState(values)
    try:
        body = GrantIn(username=values.get("username", "").strip(), reason=values.get("reason", "").strip())
    except ValidationError as err:
        form.invalid(err)
        return await _show(request, viewer, project_id, 422, form)
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await need_to_know.grant(write, viewer.user, project_id, body)
    except HTTPException as err:
        if err.status_code == 404:
            return render(request, "refused.html", viewer, status_code=404, reason=err.detail)
        form.refused(err, {"clearance": "username", "does not exist": "username", "holds a grant": "username"})
        return await _show(request, viewer, project_id, err.status_code, form)
    return RedirectResponse(f"/app/admin/grants/{quote(project_id)}?done=granted", status_code=303)


@router.post("/grants/{project_id}/{username}/revoke", response_class=HTMLResponse)
async def revoke(project_id: str, username: str, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await need_to_know.revoke(write, viewer.user, project_id, username)
    except HTTPException as err:
        form = FormState()
        form.fail("form", str(err.detail))
        return await _show(request, viewer, project_id, err.status_code, form)
    return RedirectResponse(f"/app/admin/grants/{quote(project_id)}?done=revoked", status_code=303)
