"""Signing in (OAuth2 password flow, with a lock after repeated failures), unlocking, who am I."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from pydantic import BaseModel

from api.deps import AdminUser, CurrentUser, SettingsDep, release_connection
from api.errors import AUTH, responses
from api.schemas.common import TokenOut, UserOut
from api.security import access_token_for
from services import sign_in
from storage import throttle
from storage.models import User

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/me", tags=["auth"])


def databases(request: Request) -> sign_in.Databases:
    return sign_in.Databases(request.app.state.sessionmaker, request.app.state.read_sessionmaker)


@router.post("/token", response_model=TokenOut, responses=responses(401, 422, 429))
async def login(
    request: Request,
    username: Annotated[str, Form(json_schema_extra={"maxLength": sign_in.USERNAME_MAX})],
    password: Annotated[str, Form(json_schema_extra={"maxLength": sign_in.PASSWORD_MAX, "format": "password"})],
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    """OAuth2 password flow: exchange a username and password for a bearer token (JWT).

    After a few failures in a row a username (or, after more, a client address) is locked for a
    while, longer with each further failure: 429 with `Retry-After`, even for the right password."""
    address = request.client.host if request.client else "unknown"
    await release_connection(request)
    try:
        user = await sign_in.sign_in(databases(request), settings, username, password, address)
    except sign_in.InvalidInput as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(err)) from None
    except sign_in.Locked as err:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, detail=str(err), headers={"Retry-After": str(err.retry_after)}
        ) from None
    except sign_in.Incorrect as err:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(err), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return TokenOut(access_token=access_token_for(request.app.state.jwt_secret, user, settings.jwt_ttl_minutes))


class UnlockOut(BaseModel):
    username: str
    was_locked: bool


@router.delete("/locks/{username}", response_model=UnlockOut, responses={**AUTH, **responses(422)})
async def unlock(
    username: Annotated[str, Path(min_length=1, max_length=sign_in.USERNAME_MAX)], request: Request, admin: AdminUser
) -> UnlockOut:
    """An administrator clears a user's sign-in lock and failure count (audited), e.g. after
    someone locked the account on purpose with wrong passwords. Idempotent."""
    if not username.isprintable():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="username contains control characters")
    await release_connection(request)  # one request never holds two pooled connections
    async with request.app.state.sessionmaker.begin() as write:
        was_locked = await throttle.unlock(write, username, admin.username, datetime.now(UTC))
    return UnlockOut(username=username, was_locked=was_locked)


@me_router.get("", response_model=UserOut, responses=responses(401))
async def me(user: CurrentUser) -> User:
    return user
