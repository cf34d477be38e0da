"""Finance's four-eyes work: the tranches above the threshold that wait for a request or for a
second approval, across projects, paged, counted and sorted in SQL; and one tranche's state.

What waits is read from what the database holds, not from the workflows:
- requested, not yet approved: a `tranche_approvals` row without an approver;
- due, not yet requested: the workflow's `tranche_approval` notice to the finance group, stored
  once per member under `<workflow id>-approval-s<stage>-t<tranche>-<username>`
  (workflows/project/money.py, activities/notices.py); its earliest `at` is when it fell due.
A paid tranche (its `tranches` row), an approved one, a finished project or an earlier stage's
tranche (the workflow signs only the current stage's) drop out. Closed work comes through only where the user holds a grant (the caller applies
the clearance and audits, web.pages.withheld_closed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, Subquery, and_, cast, exists, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from domain.project import ProjectStatus
from storage.access import readable_sql
from storage.models import Notification, Project, Reservation, Tranche, TrancheApproval, User

NOTICE_KIND = "tranche_approval"
# A due tranche still unsigned after this long is marked overdue: payments are late by then.
OVERDUE_AFTER = timedelta(days=7)
_WAITING = (ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value)


class Sort(StrEnum):
    DUE = "due"  # longest due first; those requested ahead of time last
    PROJECT = "project"
    REQUESTED = "requested"  # longest requested first; not yet requested last


@dataclass(frozen=True)
class AwaitingTranche:
    project_id: str
    project_title: str
    stage_no: int
    tranche_no: int
    amount: int | None  # None only when the reservation's schedule no longer says
    due_at: datetime | None  # None: requested ahead of its due date
    requested_by: str | None
    requested_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class AwaitingPage:
    rows: list[AwaitingTranche]
    total: int
    page: int
    pages: int


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def due_notices() -> Subquery:
    """(project, stage, tranche, due_at) of each due tranche of a project's current stage that the
    workflow asked finance to sign, one row however many members the notice reached."""
    prefix = Project.workflow_id + "-approval-s" + cast(Project.stage_no, String) + "-t"
    suffix = "-" + Notification.recipient
    key = Notification.key
    tranche = func.substr(key, func.length(prefix) + 1, func.length(key) - func.length(prefix) - func.length(suffix))
    return (
        select(
            Notification.project_id.label("project_id"),
            Project.stage_no.label("stage_no"),
            cast(tranche, Integer).label("tranche_no"),
            func.min(Notification.at).label("due_at"),
        )
        .join(Project, Project.id == Notification.project_id)
        .where(
            Notification.kind == NOTICE_KIND,
            func.substr(key, 1, func.length(prefix)) == prefix,
            func.substr(key, func.length(key) - func.length(suffix) + 1) == suffix,
        )
        .group_by(Notification.project_id, Project.stage_no, tranche)
        .subquery("due")
    )


@dataclass(frozen=True)
class Awaiting:
    """The rule of what waits for finance, as a query: `base` joins each waiting tranche's key
    (`keys`) with its project, its `tranche_approvals` row (absent: not requested yet) and its
    due notice (`due`: absent when requested ahead of its due date); `where` keeps those still
    to sign. The finance page adds the reader's access; the telemetry gauges count them all."""

    base: Select[Any]
    keys: Subquery
    due: Subquery
    where: tuple[ColumnElement[bool], ...]


def awaiting() -> Awaiting:
    due = due_notices()
    requested = select(TrancheApproval.project_id, TrancheApproval.stage_no, TrancheApproval.tranche_no).where(
        TrancheApproval.approved_by.is_(None)
    )
    keys = union(select(due.c.project_id, due.c.stage_no, due.c.tranche_no), requested).subquery("k")
    ta = TrancheApproval
    base = (
        select(keys)
        .join(Project, Project.id == keys.c.project_id)
        .outerjoin(
            ta,
            and_(
                ta.project_id == keys.c.project_id, ta.stage_no == keys.c.stage_no, ta.tranche_no == keys.c.tranche_no
            ),
        )
        .outerjoin(
            due,
            and_(
                due.c.project_id == keys.c.project_id,
                due.c.stage_no == keys.c.stage_no,
                due.c.tranche_no == keys.c.tranche_no,
            ),
        )
    )
    paid = exists().where(
        Tranche.project_id == keys.c.project_id,
        Tranche.stage_no == keys.c.stage_no,
        Tranche.tranche_no == keys.c.tranche_no,
    )
    where = (
        ta.approved_by.is_(None),
        ~paid,
        keys.c.stage_no == Project.stage_no,  # an earlier stage's tranche can no longer be signed
        Project.status.in_(_WAITING),
    )
    return Awaiting(base, keys, due, where)


async def awaiting_approval(
    session: AsyncSession,
    user: User,
    page: int = 1,
    per_page: int = 25,
    sort: Sort = Sort.DUE,
    now: datetime | None = None,
) -> AwaitingPage:
    now = now or datetime.now(UTC)
    rule = awaiting()
    base, keys, due, ta = rule.base, rule.keys, rule.due, TrancheApproval
    # Closed work only with a grant the clearance covers: out of the count too, not only the rows.
    where = [*rule.where, readable_sql(user)]
    total = int(await session.scalar(select(func.count()).select_from(base.where(*where).subquery())) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    due_at = due.c.due_at
    order = {
        Sort.DUE: (due_at.is_(None), due_at, ta.requested_at),
        Sort.PROJECT: (Project.title, Project.id),
        Sort.REQUESTED: (ta.requested_at.is_(None), ta.requested_at, due_at),
    }[sort]
    rows = (
        await session.execute(
            base.with_only_columns(
                keys.c.project_id,
                Project.title,
                keys.c.stage_no,
                keys.c.tranche_no,
                ta.amount,
                due_at,
                ta.requested_by,
                ta.requested_at,
            )
            .where(*where)
            .order_by(*order, keys.c.project_id, keys.c.stage_no, keys.c.tranche_no)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    ).all()
    planned = await _planned_amounts(session, {(r[0], r[2]) for r in rows if r[4] is None})
    out = []
    for pid, title, stage_no, tranche_no, amount, due_on, by, at in rows:
        due_on = _utc(due_on)
        out.append(
            AwaitingTranche(
                project_id=pid,
                project_title=title,
                stage_no=stage_no,
                tranche_no=tranche_no,
                amount=amount if amount is not None else planned.get((pid, stage_no, tranche_no)),
                due_at=due_on,
                requested_by=by,
                requested_at=_utc(at),
                overdue=due_on is not None and due_on + OVERDUE_AFTER < now,
            )
        )
    return AwaitingPage(out, total, page, pages)


async def _planned_amounts(session: AsyncSession, stages: set[tuple[str, int]]) -> dict[tuple[str, int, int], int]:
    """The tranches' amounts as their stage's reservation planned them (one query for the page):
    an unrequested tranche has no approval row to say."""
    if not stages:
        return {}
    found = await session.execute(
        select(Reservation.project_id, Reservation.stage_no, Reservation.schedule).where(
            Reservation.part == 0,
            or_(*(and_(Reservation.project_id == p, Reservation.stage_no == s) for p, s in stages)),
        )
    )
    return {
        (pid, stage_no, int(t["tranche_no"])): int(t["amount"])
        for pid, stage_no, schedule in found.all()
        for t in schedule or []
    }


@dataclass(frozen=True)
class TrancheState:
    """One tranche as finance signs it: what it is, when it fell due, who signed, whether it is paid."""

    amount: int | None
    due_at: datetime | None
    requested_by: str | None
    requested_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    paid_at: datetime | None
    overdue: bool


async def tranche_state(
    session: AsyncSession, project: Project, stage_no: int, tranche_no: int, now: datetime | None = None
) -> TrancheState:
    now = now or datetime.now(UTC)
    approval = await session.get(TrancheApproval, (project.id, stage_no, tranche_no))
    paid = await session.get(Tranche, (project.id, stage_no, tranche_no))
    prefix = f"{project.workflow_id}-approval-s{stage_no}-t{tranche_no}-"
    due_at = _utc(
        await session.scalar(
            select(func.min(Notification.at)).where(
                Notification.project_id == project.id,
                Notification.kind == NOTICE_KIND,
                func.substr(Notification.key, 1, len(prefix)) == prefix,
            )
        )
    )
    if paid is not None:
        amount: int | None = paid.amount
        due_at = _utc(paid.due_at)
    elif approval is not None:
        amount = approval.amount
    else:
        amount = (await _planned_amounts(session, {(project.id, stage_no)})).get((project.id, stage_no, tranche_no))
    approved = approval is not None and approval.approved_by is not None
    return TrancheState(
        amount=amount,
        due_at=due_at,
        requested_by=approval.requested_by if approval else None,
        requested_at=_utc(approval.requested_at) if approval else None,
        approved_by=approval.approved_by if approval else None,
        approved_at=_utc(approval.approved_at) if approval else None,
        paid_at=_utc(paid.paid_at) if paid else None,
        overdue=paid is None and not approved and due_at is not None and due_at + OVERDUE_AFTER < now,
    )


@dataclass(frozen=True)
class SignedTranche:
    """A tranche both finance signatures are on: who requested it, who approved it."""

    project_id: str
    project_title: str
    stage_no: int
    tranche_no: int
    amount: int
    requested_by: str
    requested_at: datetime | None
    approved_by: str
    approved_at: datetime | None
    paid_at: datetime | None


async def recently_signed(session: AsyncSession, user: User, limit: int = 10) -> list[SignedTranche]:
    """The latest four-eyes approvals, newest first, naming both people (closed work only with a
    grant, as the waiting list; the caller applies the clearance and audits)."""
    ta = TrancheApproval
    rows = await session.execute(
        select(ta, Project.title, Tranche.paid_at)
        .join(Project, Project.id == ta.project_id)
        .outerjoin(
            Tranche,
            and_(
                Tranche.project_id == ta.project_id,
                Tranche.stage_no == ta.stage_no,
                Tranche.tranche_no == ta.tranche_no,
            ),
        )
        .where(ta.approved_by.is_not(None), readable_sql(user))
        .order_by(ta.approved_at.desc(), ta.project_id, ta.stage_no, ta.tranche_no)
        .limit(limit)
    )
    return [
        SignedTranche(
            project_id=a.project_id,
            project_title=title,
            stage_no=a.stage_no,
            tranche_no=a.tranche_no,
            amount=a.amount,
            requested_by=a.requested_by,
            requested_at=_utc(a.requested_at),
            approved_by=a.approved_by or "",
            approved_at=_utc(a.approved_at),
            paid_at=_utc(paid_at),
        )
        for a, title, paid_at in rows.all()
    ]
