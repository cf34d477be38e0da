"""The registries of research visions and technology areas: list, read, create, edit, retire, and
the check a proposal's choice goes through. One place for the API and the pages: the same rules,
refusals and audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from fastapi import HTTPException, Request, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record
from api.deps import has_role, release_connection
from domain.proposal import Proposal
from domain.roles import Role
from domain.visions import VISION_TITLE_MIN, EntryIn, Registry
from storage.audit import audit
from storage.models import Ministry, ResearchVision, TechnologyArea, User

Entry = ResearchVision | TechnologyArea
MODELS: dict[Registry, type[Entry]] = {
    Registry.VISIONS: ResearchVision,
    Registry.AREAS: TechnologyArea,
}
NOUN = {Registry.VISIONS: "research vision", Registry.AREAS: "technology area"}
WRITERS = (Role.PM, Role.ADMIN)


def may_write(user: User) -> bool:
    return has_role(user, *WRITERS)


async def entries(session: AsyncSession, kind: Registry, active_only: bool = False) -> list[Entry]:
    """Active ones first (by title), then the retired ones."""
    model = MODELS[kind]
    query = select(model).order_by(model.retired_at.is_not(None), model.title)
    if active_only:
        query = query.where(model.retired_at.is_(None))
    return [cast(Entry, e) for e in (await session.scalars(query)).all()]


async def entry(session: AsyncSession, kind: Registry, entry_id: int) -> Entry:
    found = cast(Entry | None, await session.get(MODELS[kind], entry_id))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{NOUN[kind]} {entry_id} not found")
    return found


async def _problems(session: AsyncSession, kind: Registry, data: EntryIn, entry_id: int | None) -> list[str]:
    model = MODELS[kind]
    problems = []
    if kind == Registry.VISIONS and len(data.title.strip()) < VISION_TITLE_MIN:
        problems.append(f"title: a research vision's title has {VISION_TITLE_MIN} characters at least")
    if await session.get(Ministry, data.ministry) is None:
        problems.append(f"ministry {data.ministry!r} is not in the ministry registry")
    same = await session.scalar(
        select(model.id).where(func.lower(model.title) == data.title.lower(), model.id != (entry_id or -1))
    )
    if same is not None:
        problems.append(f"title: another {NOUN[kind]} ({same}) has the title {data.title!r}")
    return problems


async def _refuse(request: Request, user: User, action: str, target: str, problems: list[str]) -> None:
    if problems:
        await record(request, user.username, action, target, "rejected", problems=problems)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(problems))


def _require_writer(user: User, kind: Registry) -> None:
    if not may_write(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"only programme managers and administrators change the {NOUN[kind]}s"
        )


async def create(request: Request, session: AsyncSession, user: User, kind: Registry, data: EntryIn) -> int:
    """A new entry, audited; 422 with the reasons (unknown ministry, a title taken) and nothing written."""
    _require_writer(user, kind)
    await _refuse(request, user, f"create_{kind.value}", kind.value, await _problems(session, kind, data, None))
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as write:
        row = MODELS[kind](title=data.title, description=data.description, ministry=data.ministry)
        write.add(row)
        await write.flush()
        audit(write, user.username, f"create_{kind.value}", f"{kind.value}:{row.id}", "ok", title=data.title)
        return row.id


async def update(
    request: Request, session: AsyncSession, user: User, kind: Registry, entry_id: int, data: EntryIn
) -> None:
    """Edit an active entry (a retired one is kept as it was when retired: 409)."""
    _require_writer(user, kind)
    current = await entry(session, kind, entry_id)
    if current.retired_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{NOUN[kind]} {entry_id} is retired")
    target = f"{kind.value}:{entry_id}"
    await _refuse(request, user, f"update_{kind.value}", target, await _problems(session, kind, data, entry_id))
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as write:
        row = await write.get(MODELS[kind], entry_id, with_for_update=True)
        assert row is not None
        row.title, row.description, row.ministry = data.title, data.description, data.ministry
        audit(write, user.username, f"update_{kind.value}", target, "ok", title=data.title)


async def retire(request: Request, session: AsyncSession, user: User, kind: Registry, entry_id: int) -> None:
    """Retire an entry: it stays readable and its projects keep naming it; no new proposal may
    choose it. Retiring it twice: 409."""
    _require_writer(user, kind)
    current = await entry(session, kind, entry_id)
    if current.retired_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{NOUN[kind]} {entry_id} is retired already")
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as write:
        row = await write.get(MODELS[kind], entry_id, with_for_update=True)
        assert row is not None
        row.retired_at, row.retired_by = datetime.now(UTC), user.username
        audit(write, user.username, f"retire_{kind.value}", f"{kind.value}:{entry_id}", "ok")


async def choice_problems(session: AsyncSession, kind: Registry, entry_id: int | None) -> list[str]:
    """Why a proposal may not name this entry: unknown, or retired. Nothing for None."""
    if entry_id is None:
        return []
    found = cast(Entry | None, await session.get(MODELS[kind], entry_id))
    if found is None:
        return [f"{NOUN[kind]} {entry_id} is not registered"]
    if found.retired_at is not None:
        return [f"{NOUN[kind]} {entry_id} ({found.title}) is retired: choose an active one"]
    return []


async def titles(session: AsyncSession, kind: Registry, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    model = MODELS[kind]
    rows = await session.execute(select(model.id, model.title).where(model.id.in_(ids)))
    return {entry_id: title for entry_id, title in rows}


async def name_the_vision(session: AsyncSession, proposal: Proposal) -> None:
    """The proposal's vision both ways before its workflow starts: a chosen vision's title as its
    research_vision (the text the workflow's payload, the Temporal UI and the documents carry,
    as they did before the registry), or an old client's text as the active vision of that title."""
    if proposal.vision_id is not None:
        proposal.research_vision = (await entry(session, Registry.VISIONS, proposal.vision_id)).title
    elif proposal.research_vision is not None:
        proposal.vision_id = await session.scalar(
            select(ResearchVision.id).where(
                ResearchVision.title == proposal.research_vision.strip(), ResearchVision.retired_at.is_(None)
            )
        )
