"""User administration (admin only): a paged list, create, edit, deactivate and reactivate, reset a
password. The rules are services/users_admin.py's, shared with the admin pages; every change is
audited. A generated password is in the answer once and stored nowhere in clear."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel

from api.deps import AdminUser, SessionDep, release_connection
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from domain.bounds import PlainText
from domain.security import LevelField
from services import users_admin
from services.users_admin import USERNAME_PATTERN, PasswordIn, UserCreateIn, UserEditIn, UserView

router = APIRouter(prefix="/users", tags=["administration"])
UsernamePath = Annotated[str, Path(min_length=1, max_length=64, pattern=USERNAME_PATTERN)]


class AdminUserOut(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    ministry: str | None
    active: bool
    clearance_level: LevelField
    compartments: list[str]
    email: str | None = None


class UserCreatedOut(BaseModel):
    user: AdminUserOut
    generated_password: str | None = None


def _out(user: UserView) -> AdminUserOut:
    return AdminUserOut.model_validate(user, from_attributes=True)


@router.get("", response_model=ListOut[AdminUserOut], responses={**AUTH, **responses(422)})
async def list_users(
    session: SessionDep,
    admin: AdminUser,
    paging: PageIn,
    q: Annotated[PlainText, Query(max_length=64, description="Part of a username or full name.")] = "",
) -> ListOut[AdminUserOut]:
    """Users by username, in pages (follow `next`), with their total."""
    found = await users_admin.user_page(session, q, paging.cursor, paging.limit)
    return ListOut(items=[_out(u) for u in found.items], total=found.total, next=found.next)


@router.get("/{username}", response_model=AdminUserOut, responses={**AUTH, **responses(404)})
async def get_user(username: UsernamePath, session: SessionDep, admin: AdminUser) -> AdminUserOut:
    return _out(await users_admin.get_user(session, username))


@router.post(
    "", response_model=UserCreatedOut, status_code=status.HTTP_201_CREATED, responses={**AUTH, **responses(409, 422)}
)
async def create_user(body: UserCreateIn, request: Request, admin: AdminUser) -> UserCreatedOut:
    """Without a password one is generated and returned here, once."""
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        result = await users_admin.create_user(session, admin, body)
    return UserCreatedOut(user=_out(result.user), generated_password=result.generated_password)


@router.patch("/{username}", response_model=AdminUserOut, responses={**AUTH, **responses(404, 422)})
async def edit_user(username: UsernamePath, body: UserEditIn, request: Request, admin: AdminUser) -> AdminUserOut:
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return _out(await users_admin.edit_user(session, admin, username, body))


@router.post("/{username}/deactivate", response_model=AdminUserOut, responses={**AUTH, **responses(404, 422)})
async def deactivate(username: UsernamePath, request: Request, admin: AdminUser) -> AdminUserOut:
    """The user can no longer sign in, and every session and token of theirs stops working."""
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return _out(await users_admin.set_active(session, admin, username, False))


@router.post("/{username}/reactivate", response_model=AdminUserOut, responses={**AUTH, **responses(404)})
async def reactivate(username: UsernamePath, request: Request, admin: AdminUser) -> AdminUserOut:
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return _out(await users_admin.set_active(session, admin, username, True))


@router.post("/{username}/password", response_model=UserCreatedOut, responses={**AUTH, **responses(404, 422)})
async def reset_password(
    username: UsernamePath, body: PasswordIn, request: Request, admin: AdminUser
) -> UserCreatedOut:
    """A new password (generated when none is given, and returned once); the user's sessions end."""
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        result = await users_admin.reset_password(session, admin, username, body)
    return UserCreatedOut(user=_out(result.user), generated_password=result.generated_password)
