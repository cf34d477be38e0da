"""The registries of research visions (/visions) and technology areas (/areas): everyone signed
in reads them (retired ones too); programme managers and administrators create, edit and retire.
The rules are services/visions.py's, shared with the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from api.deps import CurrentUser, SessionDep
from api.errors import AUTH, responses
from domain.visions import EntryIn, EntryOut, Registry
from services import visions

# An id the database's INTEGER can hold (PostgreSQL refuses a larger one with an error, not a miss).
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _router(kind: Registry) -> APIRouter:
    router = APIRouter(prefix=f"/{kind.value}", tags=[kind.value])
    noun = visions.NOUN[kind]

    @router.get("", response_model=list[EntryOut], responses=AUTH, summary=f"List the {noun}s")
    async def list_entries(
        session: SessionDep,
        user: CurrentUser,
        active: bool = Query(False, description="Only the active ones (those a proposal may choose)."),
    ) -> list[EntryOut]:
        return [EntryOut.model_validate(e) for e in await visions.entries(session, kind, active_only=active)]

    @router.get("/{entry_id}", response_model=EntryOut, responses={**AUTH, **responses(404)}, summary=f"One {noun}")
    async def get_entry(entry_id: EntryId, session: SessionDep, user: CurrentUser) -> EntryOut:
        return EntryOut.model_validate(await visions.entry(session, kind, entry_id))

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=EntryOut,
        responses={**AUTH, **responses(403, 422)},
        summary=f"Register a {noun}",
    )
    async def create_entry(body: EntryIn, request: Request, session: SessionDep, user: CurrentUser) -> EntryOut:
        entry_id = await visions.create(request, session, user, kind, body)
        async with request.app.state.read_sessionmaker() as read:
            return EntryOut.model_validate(await visions.entry(read, kind, entry_id))

    @router.put(
        "/{entry_id}",
        response_model=EntryOut,
        responses={**AUTH, **responses(403, 404, 409, 422)},
        summary=f"Edit a {noun}",
    )
    async def update_entry(
        entry_id: EntryId, body: EntryIn, request: Request, session: SessionDep, user: CurrentUser
    ) -> EntryOut:
        await visions.update(request, session, user, kind, entry_id, body)
        async with request.app.state.read_sessionmaker() as read:
            return EntryOut.model_validate(await visions.entry(read, kind, entry_id))

    @router.post(
        "/{entry_id}/retire",
        response_model=EntryOut,
        responses={**AUTH, **responses(403, 404, 409)},
        summary=f"Retire a {noun}",
    )
    async def retire_entry(entry_id: EntryId, request: Request, session: SessionDep, user: CurrentUser) -> EntryOut:
        """Retired: still readable, still named by its projects; no new proposal may choose it."""
        await visions.retire(request, session, user, kind, entry_id)
        async with request.app.state.read_sessionmaker() as read:
            return EntryOut.model_validate(await visions.entry(read, kind, entry_id))

    return router


visions_router = _router(Registry.VISIONS)
areas_router = _router(Registry.AREAS)
