"""The registries' pages: /app/visions lists the research visions and the technology areas (retired
ones too, marked); programme managers and administrators register, edit and retire them. The rules,
refusals and audit are services/visions.py's, as the API's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from domain.roles import FundingMinistry
from domain.visions import EntryIn, Registry
from services import visions
from storage.models import Ministry
from web.pages import PageViewer, Viewer, page_session, posted, render

router = APIRouter()
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DONE = ("created", "updated", "retired")


async def _ministries(request: Request) -> list[str]:
    async with page_session(request) as read:
        codes = list((await read.scalars(select(Ministry.code).order_by(Ministry.code))).all())
    # The funding ministries first: most entries are theirs.
    return sorted(codes, key=lambda c: (c not in set(FundingMinistry), c))


@router.get("/visions", response_class=HTMLResponse)
async def registry(request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        found = {kind: await visions.entries(read, kind) for kind in Registry}
    done = request.query_params.get("done")
    return render(
        request,
        "visions.html",
        viewer,
        entries=found,
        may_write=visions.may_write(viewer.user),
        done=done if done in DONE else None,
    )


async def _form(
    request: Request,
    viewer: Viewer,
    kind: Registry,
    values: dict[str, Any],
    entry_id: int | None = None,
    reasons: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "vision_form.html",
        viewer,
        status_code=status_code,
        kind=kind.value,
        entry_id=entry_id,
        values=values,
        reasons=reasons or [],
        ministries=await _ministries(request),
    )


def _refused(request: Request, viewer: Viewer, err: HTTPException) -> Response:
    return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)


@router.get("/visions/{kind}/new", response_class=HTMLResponse)
async def new_entry(kind: Registry, request: Request, viewer: PageViewer) -> Response:
    if not visions.may_write(viewer.user):
        return _refused(request, viewer, HTTPException(403, detail="only programme managers and administrators"))
    return await _form(request, viewer, kind, {})


async def _save(request: Request, viewer: Viewer, kind: Registry, entry_id: int | None) -> Response:
    form = await posted(request)
    values = {k: form.get(k, "") for k in ("title", "description", "ministry")}
    try:
        data = EntryIn.model_validate(values)
    except ValidationError as err:
        reasons = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        return await _form(request, viewer, kind, values, entry_id, reasons, 422)
    async with page_session(request) as read:
        try:
            if entry_id is None:
                await visions.create(request, read, viewer.user, kind, data)
            else:
                await visions.update(request, read, viewer.user, kind, entry_id, data)
        except HTTPException as err:
            if err.status_code == 422:
                return await _form(request, viewer, kind, values, entry_id, str(err.detail).split("; "), 422)
            return _refused(request, viewer, err)
    return RedirectResponse(f"/app/visions?done={'created' if entry_id is None else 'updated'}", status_code=303)


@router.post("/visions/{kind}/new", response_class=HTMLResponse)
async def create_entry(kind: Registry, request: Request, viewer: PageViewer) -> Response:
    return await _save(request, viewer, kind, None)


@router.get("/visions/{kind}/{entry_id}/edit", response_class=HTMLResponse)
async def edit_entry(kind: Registry, entry_id: EntryId, request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            if not visions.may_write(viewer.user):
                raise HTTPException(403, detail="only programme managers and administrators")
            current = await visions.entry(read, kind, entry_id)
        except HTTPException as err:
            return _refused(request, viewer, err)
        values = {"title": current.title, "description": current.description, "ministry": current.ministry or ""}
    return await _form(request, viewer, kind, values, entry_id)


@router.post("/visions/{kind}/{entry_id}/edit", response_class=HTMLResponse)
async def update_entry(kind: Registry, entry_id: EntryId, request: Request, viewer: PageViewer) -> Response:
    return await _save(request, viewer, kind, entry_id)


@router.post("/visions/{kind}/{entry_id}/retire", response_class=HTMLResponse)
async def retire_entry(kind: Registry, entry_id: EntryId, request: Request, viewer: PageViewer) -> Response:
    await posted(request)
    async with page_session(request) as read:
        try:
            await visions.retire(request, read, viewer.user, kind, entry_id)
        except HTTPException as err:
            return _refused(request, viewer, err)
    return RedirectResponse("/app/visions?done=retired", status_code=303)
