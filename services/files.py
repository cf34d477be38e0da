"""Attachments: an upload streamed to the blob store, its row, the lists, and the download, for
the API and the pages alike.

An upload is written to a private temporary file while it arrives, hashed (SHA-256) and counted
on the way (over the limit it stops at once: 413); then its type is read from its content (415
when it is not on the allow-list), a closed project's file is sealed with the programme's keyring,
and only then does the blob get its name in the store, and after it the row. Whatever breaks off
before that (the client going away, a refusal, an error) leaves no blob and no row: the temporary
files go in a `finally`, and a blob stored for a row that then failed to be written is taken back
unless another row uses it.

Downloads are decided by the project's one access rule (api/access.authorize: 404 where no role
reaches the project, 403 where clearance or need-to-know is missing) and audited, allowed or not.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import authorize, is_project_pm
from api.audit import record
from api.deps import has_role, release_connection
from api.multipart import read_upload
from config import Settings
from domain.files import AttachedTo, FileRef
from domain.gate_review import TaskStatus
from domain.handoff import HandoffKind
from domain.roles import Role
from domain.statuses import ReportStatus
from services.file_checks import UnsupportedType, detect_type, sanitise_name
from storage.access import is_closed
from storage.audit import audit
from storage.blobs import BlobStore, open_store
from storage.blobs.sealed import open_sealed, seal_file
from storage.models import Document, Gate, ProgressReport, Project, ReviewTask, StoredFile, User


def blob_store(request: Request) -> BlobStore:
    """The application's blob store, made from its settings on first use."""
    state = request.app.state
    store: BlobStore | None = getattr(state, "blob_store", None)
    if store is None:
        settings: Settings = state.settings
        store = open_store(settings.blob_store, settings.data_dir, settings.blob_endpoint_url)
        state.blob_store = store
    return store


def blob_key(sha256: str, encrypted: bool) -> str:
    # Sealed and clear copies of the same bytes are different blobs (an open and a closed project
    # may hold the same file); each is stored once.
    return f"{'sealed' if encrypted else 'plain'}/{sha256}"


def check_ref(kind: AttachedTo, ref: str) -> str:
    """The attachment's reference in its one spelling, or 422 with the reason."""
    if kind == AttachedTo.HANDOFF:
        if ref not in {k.value for k in HandoffKind}:
            raise HTTPException(
                422, detail=f"a hand-off annex is for the hand-off kind final or demonstration, not {ref!r}"
            )
        return ref
    low, high = (1, 20) if kind == AttachedTo.EVIDENCE else (2000, 2100)
    if not (ref.isascii() and ref.isdigit() and low <= int(ref) <= high):
        what = "a gate number" if kind == AttachedTo.EVIDENCE else "a fiscal year"
        raise HTTPException(422, detail=f"ref must be {what} from {low} to {high}, not {ref[:40]!r}")
    return str(int(ref))


# A reviewer sees the material once they have accepted without a conflict (domain brief: the
# declaration comes before any access), and keeps it after submitting.
_MATERIAL_OPEN = (TaskStatus.ACCEPTED.value, TaskStatus.SUBMITTED.value, TaskStatus.OPEN.value)


async def _reviewer_only(session: AsyncSession, user: User, project: Project) -> set[str] | None:
    """The gates whose evidence this reader may open, or None for all of them: the PM, the
    overseeing roles and the project's performer read every gate's; a reviewer those of their
    accepted or submitted tasks; anyone else (a public-use ministry's liaison, who reaches the
    project for its hand-off) none, as the gate view shows its material to the panel only."""
    if is_project_pm(user, project) or has_role(user, Role.ADMIN, Role.OPS, Role.FINANCE):
        return None
    if Role.PERFORMER.value in user.roles and project.performer == user.username:
        return None
    if Role.REVIEWER.value not in user.roles or user.username not in project.reviewers:
        return set()
    gates = await session.scalars(
        select(ReviewTask.gate_no).where(
            ReviewTask.project_id == project.id,
            ReviewTask.reviewer == user.username,
            ReviewTask.status.in_(_MATERIAL_OPEN),
        )
    )
    return {str(g) for g in gates.all()}


def _reads_reports(user: User, project: Project) -> bool:
    """As the report pages decide (web/routes/reports.py, api/routes/money.py): the project's own
    programme manager and performer, and administrators; a reviewer, a liaison, finance or ops
    do not read a project's progress reports, so neither their attachments."""
    return (
        has_role(user, Role.ADMIN)
        or is_project_pm(user, project)
        or (Role.PERFORMER.value in user.roles and project.performer == user.username)
    )


async def readable(session: AsyncSession, user: User, project: Project, rows: list[StoredFile]) -> list[StoredFile]:
    """Of a project's files (its reader decided by the project's access rule already), those
    this user may open: a reviewer's evidence only for gates they accepted to review, a report's
    attachments only for those who read the project's reports."""
    gates = await _reviewer_only(session, user, project)
    reports = _reads_reports(user, project)
    return [
        f
        for f in rows
        if (f.attached_kind != AttachedTo.EVIDENCE.value or gates is None or f.attached_ref in gates)
        and (f.attached_kind != AttachedTo.REPORT.value or reports)
    ]


_PACKAGE = re.compile(r"-g(\d+)-r\d+-evidence$")  # activities/gate_reviews.py names them so


async def may_read_document(session: AsyncSession, user: User, project: Project, document: Document) -> bool:
    """An evidence package (it names the files and their hashes) under the files' own rule: a
    reviewer reads it once they have accepted that gate's review. Other documents: yes."""
    found = _PACKAGE.search(document.id) if document.kind == "gate_evidence" else None
    if found is None:
        return True
    gates = await _reviewer_only(session, user, project)
    return gates is None or found.group(1) in gates


async def _still_open(session: AsyncSession, project: Project, kind: AttachedTo, ref: str) -> None:
    """409 where the thing the file would join has gone in already: its payload named its files
    when it was submitted, so a later file would be listed but never part of it."""
    if kind == AttachedTo.EVIDENCE:
        gate = await session.get(Gate, (project.id, int(ref)))
        package = None if gate is None else await session.get(Document, f"{project.id}-g{ref}-r{gate.round}-evidence")
        if package is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"the evidence package of gate {ref} is in already: no file joins it now",
            )
    elif kind == AttachedTo.REPORT:
        report = await session.get(ProgressReport, (project.id, int(ref)))
        if report is not None and report.status != ReportStatus.RETURNED:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"the FY{ref} report is {report.status.value}: files join it before it is filed, or once it is returned",
            )


def may_attach(user: User, project: Project, kind: AttachedTo) -> bool:
    """Evidence and hand-off annexes are the programme manager's; a progress report's files its
    performer's too (as the reports themselves: api/routes/money.submit_report)."""
    if is_project_pm(user, project):
        return True
    return kind == AttachedTo.REPORT and Role.PERFORMER.value in user.roles and project.performer == user.username


class _Incoming:
    """The upload's bytes on their way in: a private temporary file, hashed and counted."""

    def __init__(self, folder: Path, limit: int) -> None:
        fd, name = tempfile.mkstemp(dir=folder, prefix="up-")  # mode 0600
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            mb = f" ({self.limit // (1024 * 1024)} MB)" if self.limit >= 1024 * 1024 else ""
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, detail=f"the file is larger than the {self.limit} bytes{mb} allowed"
            )
        self.hash.update(data)
        self.file.write(data)


async def receive(
    request: Request, project: Project, user: User, kind: AttachedTo, ref: str, body: AsyncIterator[bytes] | None = None
) -> tuple[StoredFile, bool]:
    """Take an upload for the project (the caller has authorized the reader); the row, and
    whether it is new (False: these bytes were attached here already)."""
    if not may_attach(user, project, kind):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"you may not attach files to this project's {kind.value}"
        )
    ref = check_ref(kind, ref)
    async with request.app.state.read_sessionmaker() as read:
        await _still_open(read, project, kind, ref)
    settings: Settings = request.app.state.settings
    store = blob_store(request)
    await release_connection(request)  # no pooled connection held while the body arrives
    incoming = _Incoming(store.incoming, settings.max_upload_bytes)
    sealed = incoming.path.with_name(incoming.path.name + ".sealed")
    try:
        with incoming.file:
            upload = await read_upload(
                body or request.stream(), request.headers.get("content-type", ""), incoming.write
            )
        name = sanitise_name(upload.filename)
        try:
            content_type = await asyncio.to_thread(detect_type, incoming.path, name)
        except UnsupportedType as err:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"{name}: {err}") from err
        sha256, encrypted = incoming.hash.hexdigest(), is_closed(project)
        async with request.app.state.read_sessionmaker() as read:
            existing = await _attached(read, project.id, kind, ref, sha256)
        if existing is not None:
            return existing, False
        source = incoming.path
        if encrypted:
            await asyncio.to_thread(seal_file, settings.keyring(), incoming.path, sealed)
            source = sealed
        key = blob_key(sha256, encrypted)
        created = await store.put(key, source)
        row = StoredFile(
            id=f"f-{uuid.uuid4().hex}",
            sha256=sha256,
            size=incoming.size,
            content_type=content_type,
            name=name,
            owner=project.organisation,
            project_id=project.id,
            attached_kind=kind.value,
            attached_ref=ref,
            encrypted=encrypted,
            uploaded_by=user.username,
        )
        try:
            async with request.app.state.sessionmaker.begin() as write:
                write.add(row)
                audit(
                    write,
                    user.username,
                    "file_upload",
                    f"file:{row.id}",
                    project=project.id,
                    attached_to=f"{kind.value}:{ref}",
                    sha256=sha256,
                    size=incoming.size,
                )
        except IntegrityError:
            # The same bytes attached here at the same moment by another request: theirs stands.
            async with request.app.state.read_sessionmaker() as read:
                existing = await _attached(read, project.id, kind, ref, sha256)
            if existing is None:
                if created:  # a conflict of another kind: the blob stored for this row has none
                    await _forget_unused(request, store, key, sha256, encrypted)
                raise
            return existing, False
        except BaseException:
            if created:
                await _forget_unused(request, store, key, sha256, encrypted)
            raise
        return row, True
    finally:
        incoming.path.unlink(missing_ok=True)
        sealed.unlink(missing_ok=True)


async def _attached(
    session: AsyncSession, project_id: str, kind: AttachedTo, ref: str, sha256: str
) -> StoredFile | None:
    found: StoredFile | None = await session.scalar(
        select(StoredFile).where(
            StoredFile.project_id == project_id,
            StoredFile.attached_kind == kind.value,
            StoredFile.attached_ref == ref,
            StoredFile.sha256 == sha256,
        )
    )
    return found


async def _forget_unused(request: Request, store: BlobStore, key: str, sha256: str, encrypted: bool) -> None:
    async with request.app.state.read_sessionmaker() as read:
        used = await read.scalar(
            select(StoredFile.id).where(StoredFile.sha256 == sha256, StoredFile.encrypted.is_(encrypted)).limit(1)
        )
    if used is None:
        await store.delete(key)


async def attached(
    session: AsyncSession, project_id: str, kind: AttachedTo | None = None, ref: str | None = None
) -> list[StoredFile]:
    """A project's files (of one attachment, when named), oldest first. The caller has decided
    that the reader may read the project."""
    query = select(StoredFile).where(StoredFile.project_id == project_id)
    if kind is not None:
        query = query.where(StoredFile.attached_kind == kind.value)
    if ref is not None:
        query = query.where(StoredFile.attached_ref == ref)
    return list((await session.scalars(query.order_by(StoredFile.uploaded_at, StoredFile.id))).all())


async def refs(session: AsyncSession, project_id: str, kind: AttachedTo, ref: str) -> list[FileRef]:
    """What a workflow payload carries of an attachment's files: references and hashes only."""
    return [
        FileRef(file_id=f.id, sha256=f.sha256, name=f.name, size=f.size)
        for f in await attached(session, project_id, kind, ref)
    ]


async def download(
    request: Request, session: AsyncSession, user: User, file_id: str
) -> tuple[StoredFile, AsyncIterator[bytes]]:
    """The file and its bytes (opened when sealed), for a reader the project's access rule lets
    through; every download, allowed or refused, is audited."""
    row = await session.get(StoredFile, file_id)
    project = await session.get(Project, row.project_id) if row is not None else None
    if row is None or project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"file {file_id[:40]} not found")
    try:
        await authorize(request, session, user, project, "file")
        if not await readable(session, user, project, [row]):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="a reviewer reads the evidence after accepting the invitation without a conflict of interest",
            )
    except HTTPException as err:
        await record(
            request,
            user.username,
            "file_download",
            f"file:{row.id}",
            "denied",
            project=project.id,
            status=err.status_code,
        )
        raise
    store = blob_store(request)
    key = blob_key(row.sha256, row.encrypted)
    if not await store.exists(key):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"the content of file {row.id} is missing from the store")
    await record(request, user.username, "file_download", f"file:{row.id}", "ok", project=project.id, sha256=row.sha256)
    body = store.read(key)
    if row.encrypted:
        settings: Settings = request.app.state.settings
        body = open_sealed(settings.keyring(), body)
    return row, body
