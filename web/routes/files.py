"""Attachments from the pages: the upload forms' target (multipart; its CSRF token is checked by
web/upload_csrf.py before a byte of the file is read) and the download link. The work is the
service's (services/files.py), as for the API: the same access rule, checks and audit."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import project_context
from api.routes.files import file_response
from domain.files import AttachedTo
from services import files
from web.pages import PageViewer, Viewer, page_session, render

router = APIRouter()


def page_of(project_id: str, kind: AttachedTo, ref: str) -> str:
    """The page an attachment's upload form is on (where the upload returns to)."""
    project, ref = quote(project_id, safe=""), quote(ref, safe="")
    if kind == AttachedTo.EVIDENCE:
        return f"/app/projects/{project}/gates/{ref}"
    if kind == AttachedTo.REPORT:
        return f"/app/projects/{project}/reports/{ref}"
    return f"/app/projects/{project}/handoffs"


def _refused(
    request: Request, viewer: Viewer, project_id: str, kind: AttachedTo, ref: str, err: HTTPException
) -> Response:
    # The reason beside a fresh form (a browser cannot be handed the chosen file back).
    return render(
        request,
        "upload_refused.html",
        viewer,
        status_code=err.status_code,
        reason=err.detail,
        project_id=project_id,
        kind=kind.value,
        ref=ref,
        back=page_of(project_id, kind, ref),
        max_mb=request.app.state.settings.max_upload_bytes // (1024 * 1024),
    )


@router.post("/projects/{project_id}/files", response_class=HTMLResponse)
async def upload(
    project_id: str,
    request: Request,
    viewer: PageViewer,
    kind: AttachedTo = Query(),
    ref: str = Query(max_length=40),
) -> Response:
    async with page_session(request) as read:
        try:
            ctx = await project_context(project_id, request, read, viewer.user)
            row, _ = await files.receive(request, ctx.project, viewer.user, kind, ref)
        except HTTPException as err:
            return _refused(request, viewer, project_id, kind, ref, err)
    return RedirectResponse(f"{page_of(project_id, kind, row.attached_ref)}?uploaded={row.id}", status_code=303)


@router.get("/files/{file_id}")
async def download(file_id: str, request: Request, viewer: PageViewer) -> Response:
    async with page_session(request) as read:
        try:
            row, body = await files.download(request, read, viewer.user, file_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    return file_response(row, body)
