"""Signing in with a username and password: input limits, the lock after repeated failures (per
username and per client address), one argon2 verification whatever the username, and an audit row
for every attempt. The API answers with a token, the pages with a session cookie."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.concurrency import run_in_threadpool

from api.security import verify_password
from config import Settings
from storage import throttle
from storage.audit import audit
from storage.models import User

USERNAME_MAX = 64  # users.username
PASSWORD_MAX = 1024
ACTOR_MAX = 64  # audit_log.actor


class SignInRefused(Exception):
    """A refused sign-in; the message is safe to show (it never says which part was wrong)."""


class InvalidInput(SignInRefused):
    pass


class Incorrect(SignInRefused):
    def __init__(self) -> None:
        super().__init__("incorrect username or password")


class Locked(SignInRefused):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Databases:
    write: async_sessionmaker[AsyncSession]
    read: async_sessionmaker[AsyncSession]


def audit_actor(username: str) -> str:
    """A username as the audit log can hold it: printable, cut to the column's length (PostgreSQL
    refuses longer values and NUL outright, and a refused login must still be recorded)."""
    clean = "".join(c if c.isprintable() else "?" for c in username[:ACTOR_MAX])
    return clean if len(username) <= ACTOR_MAX else clean[: ACTOR_MAX - 1] + "…"


def invalid_input(username: str, password: str) -> str | None:
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


async def sign_in(db: Databases, settings: Settings, username: str, password: str, address: str) -> User:
    """The user, or a SignInRefused saying why. A locked username or address is refused even with
    the right password; parallel guesses are recorded one after another under the rows' locks."""
    if problem := invalid_input(username, password):
        async with db.write.begin() as write:
            audit(write, audit_actor(username), "login", "auth", "rejected", reason=problem, address=address)
        raise InvalidInput(problem)

    def audit_login(write: AsyncSession, outcome: str, **detail: Any) -> None:
        audit(write, username, "login", "auth", outcome, address=address, **detail)

    subjects = _subjects(settings, username, address)
    async with db.write.begin() as write:
        await throttle.purge(write, datetime.now(UTC), settings.login_forget_seconds)
    async with db.read() as read:  # not held while argon2 works
        retry_after = await throttle.locked(read, subjects, datetime.now(UTC))
        user = await read.get(User, username)
    if retry_after:  # locked already: no argon2 work for it
        async with db.write.begin() as write:
            audit_login(write, "rejected", reason="locked", retry_after=retry_after)
        raise Locked(retry_after)
    # In a worker thread: argon2 is tens of milliseconds of CPU that would stall the event loop.
    hashed = user.password_hash if user is not None and user.active else None
    matches = await run_in_threadpool(verify_password, password, hashed)
    if user is None or not matches:
        async with db.write.begin() as write:
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
            raise Locked(attempt.retry_after)
        raise Incorrect()
    async with db.write.begin() as write:
        retry_after = await throttle.record_success(write, subjects, [subjects[0].key], datetime.now(UTC))
        if retry_after:
            audit_login(write, "rejected", reason="locked", retry_after=retry_after)
        else:
            audit_login(write, "ok")
    if retry_after:  # the right password, but failures recorded meanwhile locked the account
        raise Locked(retry_after)
    return user
