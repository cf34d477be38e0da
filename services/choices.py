"""What a programme manager's forms offer to choose from: the registered reviewers (to fill a panel
seat or replace a silent reviewer) and the ministry registry (to re-route a hand-off or start a
demonstration one). The API checks the choice again (`_registered_reviewer`, `_registered_ministry`);
these lists only spare the user a guess."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.roles import Role
from storage.models import Ministry, User


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


async def reviewer_choices(session: AsyncSession, excluding: Collection[str] = ()) -> list[Choice]:
    """Active users holding the reviewer role, by username; `excluding` those already on the panel."""
    users = (await session.scalars(select(User).where(User.active.is_(True)).order_by(User.username))).all()
    # roles is a JSON list: filtered here, the table holds people, not rows of work.
    return [
        Choice(u.username, f"{u.full_name} ({u.username})")
        for u in users
        if Role.REVIEWER.value in u.roles and u.username not in excluding
    ]


async def ministry_choices(session: AsyncSession, excluding: str | None = None) -> list[Choice]:
    ministries = (await session.scalars(select(Ministry).order_by(Ministry.code))).all()
    return [Choice(m.code, f"{m.name} ({m.code})") for m in ministries if m.code != excluding]
