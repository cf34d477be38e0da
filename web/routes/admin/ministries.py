"""The ministry registry: each ministry (code, name) with its liaisons, a form to add one and one
to rename each. services/ministries.py decides, as for the API."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services import ministries
from services.ministries import MinistryEditIn, MinistryIn
from web.pages import PageViewer, Viewer, page_session, posted, render
from web.routes.admin.common import FormState, refused

router = APIRouter()


async def _show(
    request: Request, viewer: Viewer, status_code: int = 200, form: FormState | None = None, editing: str = ""
) -> Response:
    async with page_session(request) as read:
        rows = await ministries.list_ministries(read)
    form = form or FormState()
    return render(
        request,
        "admin_ministries.html",
        viewer,
        status_code=status_code,
        rows=rows,
        values=form.values,
        errors=form.errors,
        reasons=form.reasons,
        editing=editing,
        done=request.query_params.get("done"),
    )


@router.get("/ministries", response_class=HTMLResponse)
async def ministries_page(request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    return await _show(request, viewer)


@router.post("/ministries", response_class=HTMLResponse)
async def create(request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = await posted(request)
    form = FormState({k: v.strip() for k, v in values.items()})
    try:
        body = MinistryIn(code=form.values.get("code", "").upper(), name=form.values.get("name", ""))
    except ValidationError as err:
        form.invalid(err)
        return await _show(request, viewer, 422, form)
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await ministries.create_ministry(write, viewer.user, body)
    except HTTPException as err:
        form.refused(err, {"already exists": "code"})
        return await _show(request, viewer, err.status_code, form)
    return RedirectResponse(f"/app/admin/ministries?done=created#ministry-{quote(body.code)}", status_code=303)


@router.post("/ministries/{code}", response_class=HTMLResponse)
async def rename(code: str, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = await posted(request)
    form = FormState({f"name-{code}": values.get("name", "").strip()})
    try:
        body = MinistryEditIn(name=values.get("name", "").strip())
    except ValidationError as err:
        for e in err.errors():
            form.fail(f"name-{code}", f"{code}: {e['msg']}")
        return await _show(request, viewer, 422, form, editing=code)
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await ministries.edit_ministry(write, viewer.user, code, body)
    except HTTPException as err:
        if err.status_code == 404:
            return render(request, "refused.html", viewer, status_code=404, reason=err.detail)
        form.fail(f"name-{code}", str(err.detail))
        return await _show(request, viewer, err.status_code, form, editing=code)
    return RedirectResponse(f"/app/admin/ministries?done=saved#ministry-{quote(code)}", status_code=303)
