"""The audit log for administrators: the same filters, paging, closed-work rule and chain state as
the admin page (services/audit_log.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from api.deps import AdminUser, SessionDep
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.params import IsoDay
from api.pseudonyms import pseudonyms_for
from domain.bounds import PlainText
from services import audit_log
from services.audit_log import AuditFilter

router = APIRouter(prefix="/audit", tags=["administration"])


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    detail: str
    hash: str


class ChainOut(BaseModel):
    verified_to: int
    broken_at: int | None
    problem: str
    anchors_checked: bool
    full_at: datetime | None


class AuditLogOut(ListOut[AuditEntryOut]):
    chain: ChainOut


@router.get("", response_model=AuditLogOut, responses={**AUTH, **responses(422)})
async def read_log(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    paging: PageIn,
    actor: Annotated[PlainText, Query(max_length=200)] = "",
    project: Annotated[PlainText, Query(max_length=200)] = "",
    action: Annotated[PlainText, Query(max_length=200)] = "",
    since: IsoDay | None = Query(None, description="First day, JST."),
    until: IsoDay | None = Query(None, description="Last day, JST."),
    verify: bool = Query(False, description="Walk the whole chain now, not only the entries since the last walk."),
) -> AuditLogOut:
    """Entries newest first. Entries about closed projects the administrator may not read are left
    out, and other mentions of them pseudonymised."""
    if problems := audit_log.range_problems(since, until):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(r for _, r in problems))
    chain = await audit_log.app_verifier(request).state(session, full=verify)
    names = await pseudonyms_for(request, session, admin, "audit_log")
    found = await audit_log.entry_page(
        session, admin, names, AuditFilter(actor, project, action, since, until), paging.cursor, paging.limit
    )
    return AuditLogOut(
        items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in found.items],
        total=found.total,
        next=found.next,
        chain=ChainOut.model_validate(chain, from_attributes=True),
    )
