"""Administration of users: the one set of rules the API (/users) and the admin pages share.

Create, edit (name, roles, ministry, clearance), deactivate and reactivate, reset a password.
Each change is audited in the transaction that makes it (never with a password in it). Ending a
user's sessions moves users.session_epoch on: every page cookie and API token issued before then
stops working (web/pages.signed_in, api/deps._user_from_token); a deactivated user cannot sign in.

Inputs are typed models (`UserCreateIn`, `UserEditIn`); a new field is one field on them, one
column, and one line in each of create_user and edit_user."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import HTTPException, status
from pydantic import BaseModel, Field, StrictBool, field_validator
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from domain.bounds import PlainText
from domain.mail import EmailAddress
from domain.proposal import Username
from domain.roles import Role
from domain.security import Compartment, Level, LevelField
from services import mail_outbox
from services.sign_in import PASSWORD_MAX
from services.user_prefs import void_sessions
from storage.audit import audit
from storage.models import Ministry, User
from storage.paging import Key, Order, Page, keyset
from storage.seed import password_hash

# OWASP ASVS 5.0 (V6.2): at least 8 characters, 15 recommended without a second factor; we ask 12
# and generate 20 (token_urlsafe(15)).
PASSWORD_MIN = 12
GENERATED_BYTES = 15
Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
FullName = Annotated[PlainText, Field(min_length=1, max_length=200)]
Roles = Annotated[list[Role], Field(min_length=1, max_length=len(Role))]
Compartments = Annotated[list[Compartment], Field(max_length=16)]
CODE_PATTERN = r"^[A-Z][A-Z0-9_-]{1,15}$"
MinistryCode = Annotated[str, Field(pattern=CODE_PATTERN)]
USERNAME_PATTERN = r"^[a-z0-9_.-]{1,64}$"  # domain/proposal.Username


def _distinct(values: list[Any]) -> list[Any]:
    return sorted(set(values))


class UserFields(BaseModel):
    """What an administrator sets about a user (create and edit alike)."""

    full_name: FullName
    # Where the user's notices are mailed (none: they are only in the notification centre).
    email: EmailAddress | None = None
    roles: Roles
    ministry: MinistryCode | None = None
    clearance_level: LevelField = Level.NONE
    compartments: Compartments = Field(default_factory=list)

    @field_validator("roles", "compartments")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        return _distinct(values)


class UserCreateIn(UserFields):
    username: Username
    # None: one is generated, and shown once in the answer.
    password: Password | None = None


class UserEditIn(BaseModel):
    """A partial edit: the fields given change, the others stay."""

    full_name: FullName | None = None
    email: EmailAddress | None = None
    clear_email: StrictBool = False  # as clear_ministry
    roles: Roles | None = None
    ministry: MinistryCode | None = None
    # `ministry: null` cannot say "remove it" in a partial edit; strict: 0 or "no" is not a boolean.
    clear_ministry: StrictBool = False
    clearance_level: LevelField | None = None
    compartments: Compartments | None = None

    @field_validator("roles", "compartments")
    @classmethod
    def _distinct(cls, values: list[Any] | None) -> list[Any] | None:
        return None if values is None else _distinct(values)


class PasswordIn(BaseModel):
    password: Password | None = None


@dataclass(frozen=True)
class UserView:
    username: str
    full_name: str
    roles: list[str]
    ministry: str | None
    active: bool
    clearance_level: Level
    compartments: list[str]
    email: str | None = None


@dataclass(frozen=True)
class UserResult:
    user: UserView
    # The password set now, when the administrator did not type it: shown once, stored nowhere.
    generated_password: str | None = None


@dataclass(frozen=True)
class UserPage:
    rows: list[UserView]
    total: int
    page: int
    pages: int


def view(user: User) -> UserView:
    return UserView(
        user.username,
        user.full_name,
        list(user.roles),
        user.ministry,
        bool(user.active),
        Level(user.clearance_level),
        list(user.compartments or []),
        user.email,
    )


def _refuse(code: int, reason: str) -> HTTPException:
    return HTTPException(code, detail=reason)


async def _user(session: AsyncSession, username: str) -> User:
    user = await session.get(User, username, with_for_update=True)
    if user is None:
        raise _refuse(status.HTTP_404_NOT_FOUND, f"user {username} not found")
    return user


async def _check_ministry(session: AsyncSession, roles: Sequence[str], ministry: str | None) -> None:
    if Role.MINISTRY.value in roles and ministry is None:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, "a ministry liaison needs a ministry")
    if ministry is not None and await session.get(Ministry, ministry) is None:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"ministry {ministry} does not exist")


async def _other_active_admins(session: AsyncSession, username: str) -> int:
    """Active administrators besides this user (roles is JSON: the few admins are read in Python)."""
    rows = (await session.scalars(select(User).where(User.active.is_(True), User.username != username))).all()
    return sum(1 for u in rows if Role.ADMIN.value in u.roles)


async def _keep_an_admin(session: AsyncSession, user: User, admin: User, what: str) -> None:
    """Nobody locks the programme out of its own administration."""
    if user.username == admin.username:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"you cannot {what} yourself")
    if Role.ADMIN.value in user.roles and not await _other_active_admins(session, user.username):
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot {what} the last active administrator")


def _fields(user: User) -> dict[str, Any]:
    """What the audit records of a user's state (never the password hash)."""
    return {
        "full_name": user.full_name,
        "email": user.email,
        "roles": list(user.roles),
        "ministry": user.ministry,
        "clearance_level": Level(user.clearance_level).name,
        "compartments": list(user.compartments or []),
    }


async def _hash(password: str) -> str:
    # argon2 is tens of milliseconds of CPU on purpose: not on the event loop.
    return await run_in_threadpool(password_hash.hash, password)


def _new_password(given: str | None) -> tuple[str, str | None]:
    """The password to set, and the one to show once (None when the administrator typed it)."""
    if given is not None:
        return given, None
    generated = secrets.token_urlsafe(GENERATED_BYTES)
    return generated, generated


def _search(q: str) -> list[ColumnElement[bool]]:
    """`q` matches part of a username or full name (as typed: % and _ are characters)."""
    if not q:
        return []
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return [or_(User.username.ilike(like, escape="\\"), User.full_name.ilike(like, escape="\\"))]


BY_USERNAME = Order("users", (Key(User.username, str),))


async def user_page(session: AsyncSession, q: str, cursor: str | None, limit: int) -> Page[UserView]:
    """The API's list: a keyset page of users by username, with the total."""
    found = await keyset(session, select(User).where(*_search(q)), BY_USERNAME, cursor, limit)
    return replace(found, items=[view(u) for u in found.items])


async def list_users(session: AsyncSession, page: int = 1, per_page: int = 25, q: str = "") -> UserPage:
    """Users by username, one numbered page (the admin page) counted and cut in SQL."""
    where = _search(q)
    total = int(await session.scalar(select(func.count()).select_from(User).where(*where)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.scalars(
        select(User).where(*where).order_by(User.username).limit(per_page).offset((page - 1) * per_page)
    )
    return UserPage([view(u) for u in rows.all()], total, page, pages)


async def get_user(session: AsyncSession, username: str) -> UserView:
    user = await session.get(User, username)
    if user is None:
        raise _refuse(status.HTTP_404_NOT_FOUND, f"user {username} not found")
    return view(user)


async def create_user(session: AsyncSession, admin: User, data: UserCreateIn) -> UserResult:
    if await session.get(User, data.username) is not None:
        raise _refuse(status.HTTP_409_CONFLICT, f"user {data.username} already exists")
    await _check_ministry(session, data.roles, data.ministry)
    password, shown = _new_password(data.password)
    user = User(
        username=data.username,
        full_name=data.full_name,
        email=data.email,
        password_hash=await _hash(password),
        roles=[r.value for r in data.roles],
        ministry=data.ministry,
        active=True,
        clearance_level=int(data.clearance_level),
        compartments=list(data.compartments),
        session_epoch=0,
    )
    session.add(user)
    audit(
        session,
        admin.username,
        "create_user",
        f"user:{data.username}",
        **_fields(user),
        password="generated" if shown else "set",
    )
    await session.flush()
    return UserResult(view(user), shown)


async def edit_user(session: AsyncSession, admin: User, username: str, data: UserEditIn) -> UserView:
    user = await _user(session, username)
    before = _fields(user)
    roles = [r.value for r in data.roles] if data.roles is not None else list(user.roles)
    ministry = None if data.clear_ministry else data.ministry if data.ministry is not None else user.ministry
    if Role.ADMIN.value in user.roles and Role.ADMIN.value not in roles:
        await _keep_an_admin(session, user, admin, "remove the admin role of")
    await _check_ministry(session, roles, ministry)
    user.roles, user.ministry = roles, ministry
    if data.full_name is not None:
        user.full_name = data.full_name
    if data.clear_email or data.email is not None:
        user.email = None if data.clear_email else data.email
    if data.clearance_level is not None:
        user.clearance_level = int(data.clearance_level)
    if data.compartments is not None:
        user.compartments = list(data.compartments)
    after = _fields(user)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if after[k] != before[k]}
    if changed:
        audit(session, admin.username, "edit_user", f"user:{username}", changed=changed)
    await session.flush()
    if "email" in changed:
        await mail_outbox.follow_recipient(session, username)
    return view(user)


async def set_clearance(
    session: AsyncSession, admin: User, username: str, level: Level, compartments: list[str]
) -> UserView:
    """The security officer records a clearance (the API's PUT /users/{username}/clearance)."""
    user = await _user(session, username)
    before = {"level": user.clearance_level, "compartments": user.compartments}
    user.clearance_level, user.compartments = int(level), sorted(set(compartments))
    after = {"level": user.clearance_level, "compartments": user.compartments}
    audit(session, admin.username, "set_clearance", f"user:{username}", before=before, after=after)
    await session.flush()
    return view(user)


async def set_active(session: AsyncSession, admin: User, username: str, active: bool) -> UserView:
    """Deactivate (no sign-in, every session ends) or reactivate a user. Idempotent: a user already
    in that state is left alone and nothing is audited."""
    user = await _user(session, username)
    if bool(user.active) == active:
        return view(user)
    if not active:
        await _keep_an_admin(session, user, admin, "deactivate")
    user.active = active
    audit(session, admin.username, "reactivate_user" if active else "deactivate_user", f"user:{username}")
    await session.flush()
    if not active:
        await void_sessions(session, username)
        await mail_outbox.follow_recipient(session, username)
        await session.refresh(user)
    return view(user)


async def reset_password(session: AsyncSession, admin: User, username: str, data: PasswordIn) -> UserResult:
    """A new password (typed, or generated and shown once); the user's sessions end."""
    user = await _user(session, username)
    password, shown = _new_password(data.password)
    user.password_hash = await _hash(password)
    audit(session, admin.username, "reset_password", f"user:{username}", password="generated" if shown else "set")
    await session.flush()
    await void_sessions(session, username)
    await session.refresh(user)
    return UserResult(view(user), shown)
