"""Sign-in throttling: failures in a row per username and per client address, with a lock that
grows with each further failure (exponential, capped) and a success that clears the user's count.

Why not a rate-limiting library (limits, slowapi, fastapi-limiter): they count requests per time
window in process memory, Redis or Memcached. This needs something else: a per-account lock whose
length grows with consecutive failures, cleared by a success, and state shared by every API process
through the database trlgate already has (SQLite or PostgreSQL), with no new service to run.

A password is checked first and its outcome recorded afterwards, in one transaction that takes the
subjects' rows in key order: a lock found then refuses the attempt, the right password too. However
many guesses arrive at once, they are recorded one after another, so no more failures than the
limit are ever counted before the lock, and a right guess recorded after the lock is refused: a
burst gains nothing over guessing in turn. Parallel sign-ins with the right password (a user's
several tabs, a script) all succeed. A lock already in place refuses an attempt before its
password is checked (no argon2 work for a locked account).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit
from storage.db import dialect_insert
from storage.models import LoginThrottle


@dataclass(frozen=True)
class Policy:
    max_failures: int
    lock_seconds: float
    max_lock_seconds: float
    forget_seconds: float

    def lock_for(self, failures: int) -> float:
        """No lock below max_failures; then the base lock, doubled by each further failure, capped."""
        if failures < self.max_failures:
            return 0.0
        return min(self.lock_seconds * 2.0 ** min(failures - self.max_failures, 62), self.max_lock_seconds)


@dataclass(frozen=True)
class Subject:
    """What is throttled: `user:<name>` or `address:<ip>`, under its policy."""

    key: str
    policy: Policy


@dataclass
class Attempt:
    """A failed sign-in as record_failure() left it: refused (retry_after > 0) or counted."""

    retry_after: int = 0
    locked: dict[str, datetime] = field(default_factory=dict)  # the locks this failure set: key -> until
    failures: dict[str, int] = field(default_factory=dict)


def user_key(username: str) -> str:
    return f"user:{username}"


def address_key(address: str) -> str:
    return f"address:{address}"


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their offset; they were written in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


async def _rows(session: AsyncSession, keys: Sequence[str], now: datetime) -> dict[str, LoginThrottle]:
    """Each key's row, created if missing and locked for this transaction.

    Every transaction takes its rows here and only here, in key order, so two never wait on each
    other's rows (a success and an attempt for the same user from the same address deadlocked on
    PostgreSQL when one took the user's row first and the other the address's). One upsert per
    key creates or locks its row at once: with an insert and then a select, a row deleted between
    the two (by purge) was not there to lock."""
    insert = dialect_insert(session)
    rows = {}
    for key in sorted(set(keys)):
        new = insert(LoginThrottle).values(key=key, failures=0, last_failure_at=now)
        upsert = new.on_conflict_do_update(
            index_elements=["key"], set_={"failures": LoginThrottle.__table__.c.failures}
        ).returning(LoginThrottle)
        rows[key] = (await session.scalars(upsert, execution_options={"populate_existing": True})).one()
    return rows


async def purge(session: AsyncSession, now: datetime, forget_seconds: float, batch: int = 100) -> None:
    """Drop rows whose failures are forgotten and whose lock has ended. In a transaction of its
    own before an attempt, skipping rows others hold, so it never makes an attempt wait."""
    stale = (
        select(LoginThrottle.key)
        .where(
            LoginThrottle.last_failure_at < now - timedelta(seconds=forget_seconds),
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale.scalar_subquery())))


async def locked(session: AsyncSession, subjects: Sequence[Subject], now: datetime) -> int:
    """Seconds until every subject's lock has ended (0: none is locked). A read, before the
    password is checked; record_failure/record_success decide again under the rows' locks."""
    rows = (await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_([s.key for s in subjects])))).all()
    return _retry_after([_utc(row.locked_until) for row in rows], now)


def _retry_after(locks: Sequence[datetime | None], now: datetime) -> int:
    waits = [until - now for until in locks if until is not None and until > now]
    return max(1, math.ceil(max(waits).total_seconds())) if waits else 0


async def record_failure(session: AsyncSession, subjects: Sequence[Subject], now: datetime) -> Attempt:
    """A wrong password: refused while any subject is locked (not counted: a lock is not extended
    by attempts made during it); otherwise counted against each subject, locking those that reach
    their limit."""
    rows = await _rows(session, [s.key for s in subjects], now)
    attempt = Attempt(retry_after=_retry_after([_utc(row.locked_until) for row in rows.values()], now))
    if attempt.retry_after:
        return attempt
    for subject in subjects:
        row = rows[subject.key]
        last = _utc(row.last_failure_at)
        if last is not None and now - last > timedelta(seconds=subject.policy.forget_seconds):
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        attempt.failures[subject.key] = row.failures
        seconds = subject.policy.lock_for(row.failures)
        if seconds:
            row.locked_until = attempt.locked[subject.key] = now + timedelta(seconds=seconds)
    return attempt


async def record_success(
    session: AsyncSession, subjects: Sequence[Subject], reset: Sequence[str], now: datetime
) -> int:
    """The right password: refused (seconds to wait) if a subject is locked by now, even by failures
    recorded while this password was checked; otherwise the `reset` keys (the user's) are cleared.
    An address's count is not: one's own account signing in must not wipe a spray across others."""
    rows = await _rows(session, [s.key for s in subjects], now)
    retry_after = _retry_after([_utc(row.locked_until) for row in rows.values()], now)
    if not retry_after:
        for key in reset:
            _clear(rows[key])
    return retry_after


def _clear(row: LoginThrottle) -> None:
    row.failures, row.locked_until = 0, None


async def unlock(session: AsyncSession, username: str, by: str, now: datetime) -> bool:
    """An administrator clears a user's lock and failure count (audited); True if it was locked.

    The way back for an account someone locked on purpose: anyone may send wrong passwords for
    `admin`, and the lock holds for the right one too."""
    key = user_key(username)
    row = (await session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())).one_or_none()
    was_locked = row is not None and (until := _utc(row.locked_until)) is not None and until > now
    if row is not None:
        _clear(row)
    audit(session, by, "unlock_sign_in", key, "ok", was_locked=was_locked)
    return was_locked
