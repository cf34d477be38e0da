"""Attachments over the API: upload (multipart, streamed), a project's list, the download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from api.context import ProjectCtx
from api.deps import CurrentUser, SessionDep
from api.errors import AUTH, ErrorOut, responses
from domain.files import AttachedTo
from services import files
from storage.models import StoredFile

router = APIRouter(tags=["files"])

REFUSED_UPLOAD: dict[int | str, dict[str, Any]] = {
    **responses(400, 404, 409, 413, 422),
    415: {"model": ErrorOut, "description": "The content is not on the allow-list (the reason says what it is)"},
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class FileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    sha256: str
    size: int
    content_type: str
    name: str
    owner: str
    project_id: str
    attached_kind: AttachedTo
    attached_ref: str
    encrypted: bool
    uploaded_by: str
    uploaded_at: datetime


@router.post(
    "/projects/{project_id}/files",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUTH,
        **REFUSED_UPLOAD,
        200: {"model": FileOut, "description": "These bytes were attached here already"},
    },
    openapi_extra=UPLOAD_BODY,
)
async def upload(
    ctx: ProjectCtx,
    kind: AttachedTo = Query(description="What the file is attached to."),
    ref: str = Query(max_length=40, description="Which one: the gate number, the fiscal year, or final|demonstration."),
) -> Any:
    """Attach a file (one `file` field, multipart). Its type is read from the content; a closed
    project's file is encrypted at rest. The same bytes attached twice are one attachment (200)."""
    row, created = await files.receive(ctx.request, ctx.project, ctx.user, kind, ref)
    out = FileOut.model_validate(row)
    if created:
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=status.HTTP_200_OK)


@router.get("/projects/{project_id}/files", response_model=list[FileOut], responses={**AUTH, **responses(404)})
async def list_files(
    ctx: ProjectCtx, kind: AttachedTo | None = None, ref: str | None = Query(None, max_length=40)
) -> list[StoredFile]:
    """The project's files, with their SHA-256, oldest first."""
    return await files.readable(
        ctx.session, ctx.user, ctx.project, await files.attached(ctx.session, ctx.project.id, kind, ref)
    )


@router.get(
    "/files/{file_id}",
    response_class=StreamingResponse,
    responses={
        **AUTH,
        **responses(404),
        200: {
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The file, as its detected content type; its SHA-256 in X-Trlgate-Sha256",
        },
    },
)
async def download(file_id: str, request: Request, session: SessionDep, user: CurrentUser) -> StreamingResponse:
    """The file's bytes, for a reader of its project (closed work: clearance and need-to-know);
    every download is audited."""
    row, body = await files.download(request, session, user, file_id)
    return file_response(row, body)


def file_response(row: StoredFile, body: AsyncIterator[bytes]) -> StreamingResponse:
    """A download: always an attachment (never shown inline, so a text or image file cannot act
    as a page of this origin), its type as detected, its hash beside it."""
    fallback = row.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return StreamingResponse(
        body,
        media_type=row.content_type,
        headers={
            "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(row.name)}",
            "Content-Length": str(row.size),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
            "X-Trlgate-Sha256": row.sha256,
        },
    )
