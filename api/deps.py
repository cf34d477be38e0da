"""Dependencies: database session, Temporal client, the current user, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, Response, status
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

# The Temporal UI calls the codec endpoints from the browser, which sends this cookie (path /codec,
# any port of this host: the API's, and the UI's own origin on the dev stack, cli/ui_proxy.py).
# An ops user's workbench sign-in sets it to the workbench session itself (web/session.py), renewed
# with each page and each codec call, so it ends when that session does: idle, absolute or signed
# out. An API client opens one with its token instead (POST /codec/session).
CODEC_COOKIE = "trlgate_codec"
_optional_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def set_codec_cookie(response: Response, request: Request, token: str, max_age: int | None = None) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        CODEC_COOKIE,
        token,
        max_age=settings.jwt_ttl_minutes * 60 if max_age is None else max_age,
        path="/codec",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or settings.web_secure_cookies,
    )


def clear_codec_cookie(response: Response) -> None:
    response.delete_cookie(CODEC_COOKIE, path="/codec")


async def _user_from_web_session(
    request: Request, session: AsyncSession, response: Response, token: str
) -> User | None:
    """The user of a workbench session token (None: not one), renewing it: the UI's use of the
    codec keeps it alive as the pages do; an idle, expired or signed-out session opens nothing."""
    from web import session as web_session  # here: the web package imports this module

    lifetime = web_session.Lifetime.of(request.app.state.settings)
    now = datetime.now(UTC)
    found = web_session.read(request.app.state.jwt_secret, token, now, lifetime)
    if found is None:
        return None
    user = await session.get(User, found.username)
    if user is None or not user.active or user.session_epoch != found.epoch:
        raise _UNAUTHORIZED
    log_context.bind(user=user.username)
    fresh = web_session.issue(request.app.state.jwt_secret, found, now, lifetime)
    set_codec_cookie(response, request, fresh, int(lifetime.absolute.total_seconds()))
    return user


async def get_codec_user(
    request: Request,
    session: SessionDep,
    response: Response,
    token: Annotated[str | None, Depends(_optional_bearer)],
) -> User:
    cookie = request.cookies.get(CODEC_COOKIE)
    user = None
    if not token and cookie:
        user = await _user_from_web_session(request, session, response, cookie)
    if user is None:
        token = token or cookie
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
