"""Signing in (OAuth2 password flow, with a lock after repeated failures), unlocking, who am I."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from api.audit import record
from api.deps import AdminUser, CurrentUser, SettingsDep, release_connection
from api.errors import AUTH, responses
from api.schemas.common import TokenOut, UserOut
from api.security import create_access_token, verify_password
from config import Settings
from storage import throttle
from storage.audit import audit
from storage.models import User

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/me", tags=["auth"])

USERNAME_MAX = 64  # users.username
PASSWORD_MAX = 1024
ACTOR_MAX = 64  # audit_log.actor


def audit_actor(username: str) -> str:
    """A username as the audit log can hold it: printable, cut to the column's length (PostgreSQL
    refuses longer values and NUL outright, and a refused login must still be recorded)."""
    clean = "".join(c if c.isprintable() else "?" for c in username[:ACTOR_MAX])
    return clean if len(username) <= ACTOR_MAX else clean[: ACTOR_MAX - 1] + "…"


def _invalid(username: str, password: str) -> str | None:
    if len(username) > USERNAME_MAX:
        return f"username is longer than {USERNAME_MAX} characters"
    if not username.isprintable():
        return "username contains control characters"
    if len(password) > PASSWORD_MAX:
        return f"password is longer than {PASSWORD_MAX} characters"
    return None


def _subjects(settings: Settings, username: str, address: str) -> list[throttle.Subject]:
    def policy(max_failures: int) -> throttle.Policy:
        return throttle.Policy(
            max_failures, settings.login_lock_seconds, settings.login_lock_max_seconds, settings.login_forget_seconds
        )

    return [
        throttle.Subject(throttle.user_key(username), policy(settings.login_user_max_failures)),
        throttle.Subject(throttle.address_key(address), policy(settings.login_address_max_failures)),
    ]


@router.post("/token", response_model=TokenOut, responses=responses(401, 422, 429))
async def login(
    request: Request,
    username: Annotated[str, Form(json_schema_extra={"maxLength": USERNAME_MAX})],
    password: Annotated[str, Form(json_schema_extra={"maxLength": PASSWORD_MAX, "format": "password"})],
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    """OAuth2 password flow: exchange a username and password for a bearer token (JWT).

    After a few failures in a row a username (or, after more, a client address) is locked for a
    while, longer with each further failure: 429 with `Retry-After`, even for the right password."""
    address = request.client.host if request.client else "unknown"
    problem = _invalid(username, password)
    if problem:
        # The lengths are checked here, not by the form's validation, so the refusal is audited.
        await record(request, audit_actor(username), "login", "auth", "rejected", reason=problem, address=address)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem)

    def audit_login(write: AsyncSession, outcome: str, **detail: Any) -> None:
        audit(write, username, "login", "auth", outcome, address=address, **detail)

    subjects = _subjects(settings, username, address)
    sessionmaker = request.app.state.sessionmaker

    def too_many(retry_after: int) -> HTTPException:
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed sign-ins: try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    async with sessionmaker.begin() as write:
        await throttle.purge(write, datetime.now(UTC), settings.login_forget_seconds)
    async with request.app.state.read_sessionmaker() as read:  # not held while argon2 works
        retry_after = await throttle.locked(read, subjects, datetime.now(UTC))
        user = await read.get(User, username)
    if retry_after:  # locked already: no argon2 work for it
        async with sessionmaker.begin() as write:
            audit_login(write, "rejected", reason="locked", retry_after=retry_after)
        raise too_many(retry_after)
    # In a worker thread: argon2 is tens of milliseconds of CPU that would stall the event loop.
    hashed = user.password_hash if user is not None and user.active else None
    matches = await run_in_threadpool(verify_password, password, hashed)
    if user is None or not matches:
        async with sessionmaker.begin() as write:
            attempt = await throttle.record_failure(write, subjects, datetime.now(UTC))
            if attempt.retry_after:  # locked by other failures while this one was checked
                audit_login(write, "rejected", reason="locked", retry_after=attempt.retry_after)
            else:
                audit_login(write, "rejected", reason="incorrect username or password")
            for key, until in attempt.locked.items():
                audit(
                    write,
                    username,
                    "login_lock",
                    key,
                    "ok",
                    failures=attempt.failures[key],
                    until=str(until),
                    address=address,
                )
        if attempt.retry_after:
            raise too_many(attempt.retry_after)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with sessionmaker.begin() as write:
        retry_after = await throttle.record_success(write, subjects, [subjects[0].key], datetime.now(UTC))
        if retry_after:
            audit_login(write, "rejected", reason="locked", retry_after=retry_after)
        else:
            audit_login(write, "ok")
    if retry_after:  # the right password, but failures recorded meanwhile locked the account
        raise too_many(retry_after)
    token = create_access_token(
        request.app.state.jwt_secret, user.username, list(user.roles), timedelta(minutes=settings.jwt_ttl_minutes)
    )
    return TokenOut(access_token=token)


class UnlockOut(BaseModel):
    username: str
    was_locked: bool


@router.delete("/locks/{username}", response_model=UnlockOut, responses={**AUTH, **responses(422)})
async def unlock(
    username: Annotated[str, Path(min_length=1, max_length=USERNAME_MAX)], request: Request, admin: AdminUser
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
