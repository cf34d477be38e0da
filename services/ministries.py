"""The registry of ministries (code, name) and their liaisons: users with the ministry_liaison role
and that ministry. One rule for the API (/ministries) and the admin pages; changes are audited. A
code names a ministry for good (hand-offs, users and projects refer to it), so only its name is
edited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.bounds import PlainText
from domain.roles import Role
from services.users_admin import MinistryCode
from storage.audit import audit
from storage.models import Ministry, User

MinistryName = Annotated[PlainText, Field(min_length=2, max_length=200)]


class MinistryIn(BaseModel):
    code: MinistryCode
    name: MinistryName


class MinistryEditIn(BaseModel):
    name: MinistryName


@dataclass(frozen=True)
class MinistryView:
    code: str
    name: str
    # Liaison usernames, active ones first listed as such.
    liaisons: list[str] = field(default_factory=list)
    inactive_liaisons: list[str] = field(default_factory=list)


async def list_ministries(session: AsyncSession) -> list[MinistryView]:
    """Every ministry with its liaisons (users of the ministry are few: their roles, a JSON list,
    are read in Python, which SQLite and PostgreSQL then agree on)."""
    ministries = (await session.scalars(select(Ministry).order_by(Ministry.code))).all()
    users = (await session.scalars(select(User).where(User.ministry.is_not(None)).order_by(User.username))).all()
    liaisons = [u for u in users if Role.MINISTRY.value in u.roles]
    return [
        MinistryView(
            m.code,
            m.name,
            [u.username for u in liaisons if u.ministry == m.code and u.active],
            [u.username for u in liaisons if u.ministry == m.code and not u.active],
        )
        for m in ministries
    ]


async def create_ministry(session: AsyncSession, admin: User, body: MinistryIn) -> MinistryView:
    if await session.get(Ministry, body.code) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"ministry {body.code} already exists")
    session.add(Ministry(code=body.code, name=body.name))
    audit(session, admin.username, "create_ministry", f"ministry:{body.code}", name=body.name)
    await session.flush()
    return MinistryView(body.code, body.name)


async def edit_ministry(session: AsyncSession, admin: User, code: str, body: MinistryEditIn) -> MinistryView:
    ministry = await session.get(Ministry, code, with_for_update=True)
    if ministry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"ministry {code} not found")
    if ministry.name != body.name:
        audit(session, admin.username, "edit_ministry", f"ministry:{code}", before=ministry.name, after=body.name)
        ministry.name = body.name
    await session.flush()
    return next(m for m in await list_ministries(session) if m.code == code)
