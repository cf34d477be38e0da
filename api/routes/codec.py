"""The codec endpoints the Temporal UI calls ("remote codec endpoint") to show payloads to cleared
ops staff (everyone else sees ciphertext), and the codec session for browsers whose UI login does
not pass the user's token."""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload

from api.audit import record
from api.deps import CodecUser, OpsUser, SessionDep, TokenDep, clear_codec_cookie, release_connection, set_codec_cookie
from api.errors import AUTH, responses
from connection.codec import (
    ENCODING,
    FORMAT_VERSION,
    EncryptionCodec,
    KeyringError,
    sealed_format,
    sealed_workflow,
)
from domain.proposal import Classification
from domain.security import AccessDecision
from storage.access import closed_decisions, is_closed
from storage.audit import audit
from storage.models import Project, User

router = APIRouter(prefix="/codec", tags=["protection of closed work"])


class PayloadIn(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="Metadata values, base64.")
    data: str = Field(default="", description="The payload's bytes, base64.")


MAX_PAYLOADS = 1000  # per request: the UI sends one history page's payloads; each decision is audited


class PayloadsIn(BaseModel):
    payloads: list[PayloadIn] = Field(max_length=MAX_PAYLOADS, description=f"At most {MAX_PAYLOADS} payloads.")


def _to_payload(p: PayloadIn) -> Payload:
    try:
        return Payload(
            metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
            data=base64.b64decode(p.data, validate=True),
        )
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"payloads must be base64: {err}") from err


def _from_payload(p: Payload) -> PayloadIn:
    return PayloadIn(
        metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
        data=base64.b64encode(p.data).decode(),
    )


def _candidates(workflow_id: str) -> list[str]:
    """Every project workflow id a workflow id could be of. It is `project-<id>` itself or
    `project-<id>-<child>`, and project ids hold hyphens too, so any hyphen-prefix may be the
    project: `project-C-gate-1-r1` is closed C's gate child and also the workflow of a project with
    the id `C-gate-1-r1`."""
    parts = workflow_id.split("-")
    return ["-".join(parts[:i]) for i in range(len(parts), 1, -1)]


def _codec(request: Request) -> EncryptionCodec:
    return EncryptionCodec(request.app.state.settings.keyring())


@router.post("/session", status_code=status.HTTP_204_NO_CONTENT, responses={**AUTH, **responses(403)})
async def open_codec_session(request: Request, response: Response, token: TokenDep, user: OpsUser) -> None:
    """For the Temporal UI in this browser: the codec endpoints accept this session's cookie
    (HttpOnly, same site, path /codec, as long as the token lives)."""
    set_codec_cookie(response, request, token)
    await record(request, user.username, "codec_session", "codec", "ok")


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, responses=AUTH)
async def close_codec_session(response: Response, user: CodecUser) -> None:
    clear_codec_cookie(response)


UNATTRIBUTED = "codec:unattributed"  # the audit target of payloads that name no workflow we can trust


@dataclass
class _Scope:
    """Whom the payloads of one request could belong to: per closed project, its payloads and
    their workflows; and how many payloads are of unknown workflow."""

    closed: dict[str, Project] = field(default_factory=dict)
    payloads: Counter[str] = field(default_factory=Counter)
    workflows: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    unattributed: int = 0


async def _owners(session: AsyncSession, workflow_ids: set[str | None]) -> dict[str | None, list[Project] | None]:
    """For each workflow id, the closed projects a payload stamped with it could be of (one query
    for them all); None when it is of unknown workflow: no stamp its tag proves, or a stamp that
    names no project row (a project's row is written after its workflow starts; and trlgate stamps
    no workflow but a project's)."""
    candidates = {c: w for w in workflow_ids if w is not None for c in _candidates(w)}
    rows = (
        (await session.scalars(select(Project).where(Project.workflow_id.in_(sorted(candidates))))).all()
        if candidates
        else []
    )
    by_workflow = {p.workflow_id: p for p in rows}
    owners: dict[str | None, list[Project] | None] = {None: None}
    for w in workflow_ids - {None}:
        assert w is not None
        projects = [by_workflow[c] for c in _candidates(w) if c in by_workflow]
        owners[w] = [p for p in projects if is_closed(p)] if projects else None
    return owners


async def _decide(
    session: AsyncSession, user: User, scope: _Scope
) -> tuple[dict[str, AccessDecision], bool, dict[str, Any]]:
    """The user's decision for each closed project the payloads could be of, and whether a payload
    of unknown workflow opens: only for a user whose decision allows every closed project."""
    decisions = await closed_decisions(session, user, scope.closed.values(), role_ok=True)
    if not scope.unattributed:
        return decisions, False, {}
    every = (await session.scalars(select(Project).where(Project.classification == Classification.CLOSED.value))).all()
    denied = {pid: d.reason for pid, d in (await closed_decisions(session, user, every, role_ok=True)).items() if not d}
    detail = {
        "reason": "may not read every closed project" if denied else "may read every closed project",
        "closed_projects": len(every),
        "denied": denied,
        "payloads": scope.unattributed,
    }
    return decisions, not denied, detail


@router.post("/decode", response_model=PayloadsIn, responses={**AUTH, **responses(422)})
async def codec_decode(body: PayloadsIn, request: Request, session: SessionDep, user: CodecUser) -> PayloadsIn:
    """Open sealed payloads for an ops user. A payload whose tag binds its workflow stamp (codec
    format 2) opens only for someone every closed project it could be of allows (project ids hold
    hyphens, so a stamp may fit more than one). A payload of unknown workflow (sealed without a
    stamp, in format 1, whose stamp proves nothing, or stamped with a workflow of no project row)
    opens only for someone who may read every closed project. Anyone else gets the payload back
    unchanged (ciphertext in the UI). The decisions are audited, one entry per closed project and
    one for the payloads of unknown workflow, before anything is shown. A payload that does not
    open (altered; its stamp, key id or format marker changed or removed) is refused with 422, and
    then nothing opens."""
    codec = _codec(request)
    scope = _Scope()
    sealed: list[tuple[Payload, str | None] | None] = []  # None: never sealed
    for n, item in enumerate(body.payloads):
        payload = _to_payload(item)
        if payload.metadata.get("encoding") != ENCODING:
            sealed.append(None)  # never sealed: nothing to open
            continue
        plain = _open(codec, payload, n)  # first: the tag proves the stamp the decision reads
        sealed.append((plain, sealed_workflow(payload) if sealed_format(payload) == FORMAT_VERSION else None))
    owners_of = await _owners(session, {s[1] for s in sealed if s is not None})
    opened: list[tuple[Payload, list[Project] | None] | None] = []
    for entry in sealed:
        if entry is None:
            opened.append(None)
            continue
        plain, workflow_id = entry
        owners = owners_of[workflow_id]
        if owners is None:
            scope.unattributed += 1
        for project in owners or ():
            scope.closed[project.id] = project
            scope.payloads[project.id] += 1
            scope.workflows[project.id].add(workflow_id or "")
        opened.append((plain, owners))
    decisions, unattributed, unattributed_detail = await _decide(session, user, scope)
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as write:
        for pid, decision in decisions.items():
            audit(
                write,
                user.username,
                "codec_decode",
                f"project:{pid}",
                "ok" if decision else "denied",
                reason=decision.reason,
                payloads=scope.payloads[pid],
                workflow_ids=sorted(scope.workflows[pid]),
            )
        if scope.unattributed:
            audit(
                write,
                user.username,
                "codec_decode",
                UNATTRIBUTED,
                "ok" if unattributed else "denied",
                **unattributed_detail,
            )
    out: list[PayloadIn] = []
    for item, result in zip(body.payloads, opened, strict=True):
        if result is None:
            out.append(item)
            continue
        plain, owners = result
        allowed = unattributed if owners is None else all(decisions[p.id] for p in owners)
        out.append(_from_payload(plain) if allowed else item)
    return PayloadsIn(payloads=out)


def _open(codec: EncryptionCodec, payload: Payload, n: int) -> Payload:
    try:
        return codec.open(payload)
    except InvalidTag as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"payload {n} does not open: it was altered (data, key id, workflow stamp or format marker)",
        ) from err
    except KeyringError as err:  # the reason names no key id: which keys the keyring holds is not the caller's
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"payload {n} does not open: it was sealed under a key this keyring does not hold",
        ) from err
    except ValueError as err:  # an unknown format, a truncated payload
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"payload {n} does not open: {err}") from err


@router.post("/encode", response_model=PayloadsIn, responses={**AUTH, **responses(422)})
async def codec_encode(body: PayloadsIn, request: Request, user: CodecUser) -> PayloadsIn:
    """Seal payloads an ops user sends from the Temporal UI (a signal's input, say)."""
    codec = _codec(request)
    return PayloadsIn(payloads=[_from_payload(codec.seal(_to_payload(p))) for p in body.payloads])
