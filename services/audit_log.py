"""The audit log as an administrator reads it: filtered by actor, project, action and date range,
newest first, one page counted and cut in SQL, with the chain's verification state.

Closed work obeys the one access policy: an entry whose target is a closed project the reader may
not read is left out in SQL (storage/access.refused_projects, so the count agrees with the rows), and
any other mention of such a project (a hand-off's id, a list's detail) shows its pseudonym
(api/pseudonyms.py). Verification is storage/audit.verify_chain, walked incrementally: from the
last entry this process verified, or from the sealed checkpoint `trlgate audit-verify` keeps, after
checking that entry still holds its hash."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.pseudonyms import Pseudonyms
from domain.fiscal import JST
from storage import audit_checkpoint
from storage.access import refused_projects
from storage.audit import ChainReport, ChainStart, entry_hash, verify_chain
from storage.models import AuditEntry, Project, User
from storage.paging import Key, Order, Page, keyset

PROJECT_TARGET = "project:"


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    project: str = ""  # a project id (a pseudonym names its project)
    action: str = ""
    since: date | None = None  # calendar days in JST, both ends included
    until: date | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    detail: str  # as JSON text; WITHHELD where it names closed work the reader may not read
    hash: str


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    page: int
    pages: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _about_project(project_id: str) -> ColumnElement[bool]:
    """Entries about a project: its own (project:<id>) and those naming it as the first part of
    their target's id (a hand-off `handoff:<id>-MOD-…`, a payment `pay:<id>:1:2`)."""
    pid = _escape_like(project_id)
    return or_(
        AuditEntry.target == PROJECT_TARGET + project_id,
        AuditEntry.target.like(f"%:{pid}", escape="\\"),
        AuditEntry.target.like(f"%:{pid}:%", escape="\\"),
        AuditEntry.target.like(f"%:{pid}-%", escape="\\"),
    )


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, JST)


# The days a range may name: JST midnight of the first and of the day after the last must be a
# datetime in UTC too (0001-01-01 and 9999-12-31 overflow: a 500, not a filter).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def range_problems(since: date | None, until: date | None) -> list[tuple[str, str]]:
    """Why a date range is no filter, each reason with its field: one rule for the API and the page."""
    problems = [
        (name, f"{name}: a date from {FIRST_DAY} to {LAST_DAY}")
        for name, day in (("since", since), ("until", until))
        if day is not None and not FIRST_DAY <= day <= LAST_DAY
    ]
    if not problems and since is not None and until is not None and since > until:
        problems.append(("until", "until: the range ends before it begins"))
    return problems


NEWEST = Order("audit", (Key(AuditEntry.id, int, desc=True),))


async def log_query(session: AsyncSession, user: User, names: Pseudonyms, found: AuditFilter) -> Select[Any] | None:
    """The filtered log as this reader may read it; None when the filter names closed work the
    reader may not read (nothing to list)."""
    # Entries whose target is a closed project the reader may not read are left out. Not a join of
    # every entry with its project: the newest page is then read backwards along the id index and
    # the count is one scan of the log, each row probed in a small hash of refused targets.
    refused = refused_projects(user).with_only_columns(literal(PROJECT_TARGET) + Project.id)
    query = select(AuditEntry).where(AuditEntry.target.not_in(refused))
    if found.actor:
        query = query.where(AuditEntry.actor == found.actor)
    if found.action:
        query = query.where(AuditEntry.action == found.action)
    if found.project:
        project_id = names.resolve(found.project)
        if project_id is None:  # a closed project's real id the reader may not read: nothing
            return None
        query = query.where(_about_project(project_id))
    if found.since is not None:
        query = query.where(AuditEntry.at >= _start_of(found.since))
    if found.until is not None:
        query = query.where(AuditEntry.at < _start_of(found.until + timedelta(days=1)))
    return query


async def entries(
    session: AsyncSession, user: User, names: Pseudonyms, found: AuditFilter, page: int = 1, per_page: int = 50
) -> AuditPage:
    """One numbered page (the admin page)."""
    query = await log_query(session, user, names, found)
    if query is None:
        return AuditPage([], 0, 1, 1)
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.scalars(query.order_by(*NEWEST.order_by()).limit(per_page).offset((page - 1) * per_page))
    return AuditPage([_row(e, names) for e in rows.all()], total, page, pages)


async def entry_page(
    session: AsyncSession, user: User, names: Pseudonyms, found: AuditFilter, cursor: str | None, limit: int
) -> Page[AuditRow]:
    """One keyset page (the API), newest first, with the total."""
    query = await log_query(session, user, names, found)
    if query is None:
        if cursor:
            NEWEST.decode(cursor)  # a bad cursor is refused all the same
        return Page([], 0, None)
    found_page = await keyset(session, query, NEWEST, cursor, limit)
    return replace(found_page, items=[_row(e, names) for e in found_page.items])


# The detail of an entry about closed work the reader may not read: its free text (a hand-off's
# decline reason, a refusal's reason, a decision) is the closed work's content, so only the
# pseudonymised target, the actor, the action and the outcome are shown.
WITHHELD = "(withheld: closed work)"


def _row(entry: AuditEntry, names: Pseudonyms) -> AuditRow:
    detail = json.dumps(entry.detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    target = names.text(entry.target)
    hidden = target != entry.target or names.text(detail) != detail
    return AuditRow(
        entry.id,
        entry.at,
        entry.actor,
        entry.action,
        target,
        entry.outcome,
        WITHHELD if hidden else detail,
        entry.hash,
    )


async def actions(session: AsyncSession) -> list[str]:
    """The actions the log holds, for the filter's choice."""
    return list((await session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))).all())


@dataclass(frozen=True)
class ChainState:
    verified_to: int  # the newest entry verified (0: none yet)
    broken_at: int | None
    problem: str
    anchors_checked: bool
    # When the chain was last walked from the genesis (or from the sealed checkpoint, which the
    # CLI's full verification vouches for); the walks between only cover the entries since.
    full_at: datetime | None


# Incremental verification cannot see an older entry rewritten in place (only the entries since the
# last verified one are walked): the whole chain is walked again at least this often, and on demand.
FULL_EVERY = timedelta(minutes=10)


def _holds(entry: AuditEntry) -> bool:
    """The entry's content still gives its hash (the walk after it starts from that hash)."""
    found = entry_hash(entry.prev_hash, entry.at, entry.actor, entry.action, entry.target, entry.outcome, entry.detail)
    return found == entry.hash


class ChainVerifier:
    """Verifies the log incrementally: once an entry is verified, its hash vouches for every entry
    before it (as written then), so the next verification walks only what came after, after
    checking that entry is still there, unchanged. One per application; one walk at a time."""

    def __init__(self, key: bytes | None, checkpoint: Any = None, full_every: timedelta = FULL_EVERY) -> None:
        self.key = key
        self.checkpoint_path = checkpoint
        self.full_every = full_every
        self.start: ChainStart | None = None
        self.full_at: datetime | None = None
        self.lock = asyncio.Lock()

    async def _from_checkpoint(self) -> ChainStart | None:
        if self.key is None or self.checkpoint_path is None:
            return None
        try:
            found = await asyncio.to_thread(audit_checkpoint.read, self.checkpoint_path, self.key)
        except (audit_checkpoint.CheckpointError, OSError):
            return None  # unreadable or foreign: walk from the beginning instead
        return None if found is None else ChainStart(found.entry_id, found.hash, anchored=True)

    async def state(self, session: AsyncSession, full: bool = False) -> ChainState:
        async with self.lock:
            now = datetime.now(UTC)
            whole = full or self.start is None or self.full_at is None or now - self.full_at >= self.full_every
            start = await self._from_checkpoint() if whole else self.start
            if start is not None:
                entry = await session.get(AuditEntry, start.entry_id)
                if entry is None or entry.hash != start.hash or not _holds(entry):
                    self.start = None
                    problem = f"entry {start.entry_id}, verified before, is gone or changed: the log was cut back or rewritten"
                    return ChainState(0, start.entry_id, problem, self.key is not None, self.full_at)
                start = ChainStart(start.entry_id, start.hash, anchored=bool(entry.anchor))
            report: ChainReport = await verify_chain(session, self.key, start=start)
            if whole:
                self.full_at = now
            if report.broken_at is not None:
                self.start = None
                verified_to = max(report.broken_at - 1, 0)
                return ChainState(verified_to, report.broken_at, report.problem, report.anchors_checked, self.full_at)
            if report.last_id:
                self.start = ChainStart(report.last_id, report.last_hash, anchored=report.anchored > 0)
            return ChainState(report.last_id, None, "", report.anchors_checked, self.full_at)


def app_verifier(request: Any) -> ChainVerifier:
    """The application's one verifier (it remembers how far the chain was verified), made on
    first use with the deployment's audit key and checkpoint."""
    state = request.app.state
    found: ChainVerifier | None = getattr(state, "audit_verifier", None)
    if found is None:
        settings = state.settings
        found = ChainVerifier(settings.resolved_audit_key(), settings.resolved_audit_checkpoint)
        state.audit_verifier = found
    return found
