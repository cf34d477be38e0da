"""Who a notification reaches. The workflows address people by username and a few notices to a
role group (`group:finance`: a tranche waits for four eyes; domain.roles.group). A notice to a group is stored once for each
active member who may read the project, keyed by its business key and the username: each person
has their own row, so state kept per notice (read, dismissed) is per person; the group is resolved
when the notice is sent (who joins later does not inherit old notices, closed work reaches only
the cleared and granted); and a retried send stores nothing twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.roles import Role, group_role
from storage.access import decide_for, granted_users, is_closed
from storage.models import Notification, Project, User


async def readers(session: AsyncSession, project: Project, users: Iterable[User]) -> list[str]:
    """The usernames of `users` who may read the project: all of them for open work; for closed
    work only those cleared for its label and granted need-to-know."""
    if not is_closed(project):
        return [u.username for u in users]
    granted = await granted_users(session, project.id)
    return [u.username for u in users if decide_for(u, project, u.username in granted)]


async def role_members(session: AsyncSession, project: Project, role: Role) -> list[str]:
    active = (await session.scalars(select(User).where(User.active.is_(True)).order_by(User.username))).all()
    return await readers(session, project, [u for u in active if role.value in u.roles])


async def store_notice(
    session: AsyncSession, key: str, project_id: str, recipient: str, kind: str, message: str, at: datetime
) -> bool:
    """Store a notice for a user, or for each member of a role group; False when all were stored before."""
    addressees = {recipient: key}
    project = await session.get(Project, project_id)
    role = group_role(recipient)
    if role is not None and project is not None:
        addressees = {name: f"{key}-{name}" for name in await role_members(session, project, role)}
    added = False
    for name, name_key in addressees.items():
        if await session.get(Notification, name_key) is None:
            session.add(
                Notification(key=name_key, project_id=project_id, recipient=name, kind=kind, message=message, at=at)
            )
            added = True
    return added
