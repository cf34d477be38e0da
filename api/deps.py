"""Dependencies: database session, Temporal client, the current user, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.security import decode_access_token
from config import Settings
from domain.roles import Role
from storage.models import User
from telemetry import context as log_context

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session. Commands change data through workflows; the few direct writes (project
    start, audit) open their own short write transaction."""
    async with request.app.state.read_sessionmaker() as session:
        request.state.read_session = session
        yield session


async def release_connection(request: Request) -> None:
    """End the request's read transaction, which hands its connection back to the pool.

    Called before every wait on Temporal (an Update can take seconds: a stop runs its
    activities first) and before a write, so that a request never holds a pooled connection
    while it waits for something else; holding one while asking for another is how thirty
    concurrent commands once deadlocked the pool. Objects already loaded stay readable; a later
    query begins a new, short transaction."""
    session: AsyncSession | None = getattr(request.state, "read_session", None)
    if session is not None:
        await session.close()


def get_client(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="Temporal is not connected")
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ClientDep = Annotated[Client, Depends(get_client)]
TokenDep = Annotated[str, Depends(oauth2_scheme)]

_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED, detail="could not validate credentials", headers={"WWW-Authenticate": "Bearer"}
)


async def _user_from_token(request: Request, session: AsyncSession, token: str) -> User:
    try:
        claims = decode_access_token(request.app.state.jwt_secret, token)
    except jwt.InvalidTokenError as err:
        raise _UNAUTHORIZED from err
    user = await session.get(User, claims["sub"])
    if user is None or not user.active:
        raise _UNAUTHORIZED
    if "epoch" in claims and claims["epoch"] != user.session_epoch:  # its sessions were ended since
        raise _UNAUTHORIZED
    log_context.bind(user=user.username)
    return user


async def get_current_user(request: Request, session: SessionDep, token: TokenDep) -> User:
    return await _user_from_token(request, session, token)


CurrentUser = Annotated[User, Depends(get_current_user)]

# The Temporal UI calls the codec endpoints from the browser. Where its login does not pass the
# user's token, an ops user opens a codec session once (POST /codec/session) and the browser then
# sends this cookie with the UI's cross-origin requests ("include credentials").
CODEC_COOKIE = "trlgate_codec"
_optional_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def get_codec_user(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(_optional_bearer)]
) -> User:
    token = token or request.cookies.get(CODEC_COOKIE)
    if not token:
        raise _UNAUTHORIZED
    user = await _user_from_token(request, session, token)
    if not has_role(user, Role.OPS, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs one of the roles: ops, admin")
    return user


CodecUser = Annotated[User, Depends(get_codec_user)]


def has_role(user: User, *roles: Role) -> bool:
    return any(r.value in user.roles for r in roles)


def require_roles(*roles: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    allowed = ", ".join(r.value for r in roles)

    async def check(user: CurrentUser) -> User:
        if not has_role(user, *roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this needs one of the roles: {allowed}")
        return user

    return check


PmUser = Annotated[User, Depends(require_roles(Role.PM, Role.ADMIN))]
ReviewerUser = Annotated[User, Depends(require_roles(Role.REVIEWER))]
MinistryUser = Annotated[User, Depends(require_roles(Role.MINISTRY))]
# Who reads the fund (its table, reconciliation, forecast): the API and the pages alike.
FUND_READERS = (Role.FINANCE, Role.ADMIN, Role.OPS, Role.PM)
FundViewer = Annotated[User, Depends(require_roles(*FUND_READERS))]
FinanceUser = Annotated[User, Depends(require_roles(Role.FINANCE))]
SignerUser = Annotated[User, Depends(require_roles(Role.FINANCE, Role.PM))]
ReportingUser = Annotated[User, Depends(require_roles(Role.PERFORMER, Role.PM))]
PerformerUser = Annotated[User, Depends(require_roles(Role.PERFORMER))]
AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
OpsUser = Annotated[User, Depends(require_roles(Role.OPS, Role.ADMIN))]
