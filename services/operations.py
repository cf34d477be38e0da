"""Operations: stuck or overdue work, one paged list per kind, each counted and ordered in SQL,
most overdue first. Gates past due, projects on hold, hand-offs past their deadline unanswered,
payments not yet sent (the tranches waiting for four eyes are finance's list, reused as it is). The caller
applies the access policy to closed work; every list here is the whole programme's (ops sees all)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.policy import GatePolicy
from domain.programme_clock import ProgrammeClock
from domain.project import ProjectStatus
from domain.statuses import GateStatus, HandoffStatus, PaymentStatus
from storage import repair_runs
from storage.models import AuditEntry, Gate, Handoff, PaymentInstruction, Project, Tranche

T = TypeVar("T")


@dataclass(frozen=True)
class Paged(Generic[T]):
    rows: list[T]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class OverdueGate:
    project_id: str
    project_title: str
    gate_no: int
    round: int
    due_at: datetime


@dataclass(frozen=True)
class Hold:
    project_id: str
    project_title: str
    since: datetime | None
    reason: str
    # When the programme's default hold limit runs out (None: unknown since, or the clock stopped).
    limit_at: datetime | None


@dataclass(frozen=True)
class OverdueHandoff:
    handoff_id: str
    project_id: str
    project_title: str
    ministry: str
    kind: str
    deadline_at: datetime


@dataclass(frozen=True)
class UnsentPayment:
    project_id: str
    project_title: str
    stage_no: int | None
    tranche_no: int | None
    amount: int
    since: datetime


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


async def _paged(
    session: AsyncSession, query: Select[*tuple[Any, ...]], page: int, per_page: int
) -> tuple[Sequence[Any], int, int, int]:
    """The page's rows of an ordered query, its COUNT, and the page clamped to what exists."""
    total = int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = (await session.execute(query.limit(per_page).offset((page - 1) * per_page))).all()
    return rows, total, page, pages


async def overdue_gates(session: AsyncSession, now: datetime, page: int = 1, per_page: int = 25) -> Paged[OverdueGate]:
    """Open review rounds past their due date, longest overdue first."""
    query = (
        select(Gate.project_id, Project.title, Gate.gate_no, Gate.round, Gate.due_at)
        .join(Project, Project.id == Gate.project_id)
        .where(Gate.status == GateStatus.OPEN.value, Gate.workflow_id.is_not(None), Gate.due_at < now)
        .order_by(Gate.due_at, Gate.project_id, Gate.gate_no)
    )
    rows, total, page, pages = await _paged(session, query, page, per_page)
    out = [OverdueGate(pid, title, no, round_, _utc(due) or now) for pid, title, no, round_, due in rows]
    return Paged(out, total, page, pages)


async def holds(session: AsyncSession, seconds_per_day: float, page: int = 1, per_page: int = 25) -> Paged[Hold]:
    """Projects on hold, the longest held first. Since when and why: the newest `project_on_hold`
    entry of the audit log (the status write records the workflow's reason). The limit is the
    programme's default (a proposal's own limit lives in its workflow, not in the database)."""
    target = literal("project:") + Project.id
    latest = (
        select(func.max(AuditEntry.id))
        .where(AuditEntry.action == f"project_{ProjectStatus.ON_HOLD.value}", AuditEntry.target == target)
        .correlate(Project)
        .scalar_subquery()
    )
    query = (
        select(Project.id, Project.title, AuditEntry.at, AuditEntry.detail)
        .outerjoin(AuditEntry, AuditEntry.id == latest)
        .where(Project.status == ProjectStatus.ON_HOLD.value)
        .order_by(AuditEntry.at.is_(None), AuditEntry.at, Project.id)
    )
    rows, total, page, pages = await _paged(session, query, page, per_page)
    clock = ProgrammeClock(None, None, seconds_per_day)
    max_days = GatePolicy().max_hold_days
    out = []
    for pid, title, at, detail in rows:
        since = _utc(at)
        reason = str((detail or {}).get("reason") or "")
        out.append(Hold(pid, title, since, reason, clock.hold_limit(since, max_days) if since else None))
    return Paged(out, total, page, pages)


async def overdue_handoffs(
    session: AsyncSession, now: datetime, page: int = 1, per_page: int = 25
) -> Paged[OverdueHandoff]:
    """Hand-offs still unanswered past their deadline, longest overdue first."""
    query = (
        select(Handoff.id, Handoff.project_id, Project.title, Handoff.ministry, Handoff.kind, Handoff.deadline_at)
        .join(Project, Project.id == Handoff.project_id)
        .where(Handoff.status == HandoffStatus.PENDING.value, Handoff.deadline_at < now)
        .order_by(Handoff.deadline_at, Handoff.id)
    )
    rows, total, page, pages = await _paged(session, query, page, per_page)
    out = [
        OverdueHandoff(hid, pid, title, ministry, kind, _utc(d) or now) for hid, pid, title, ministry, kind, d in rows
    ]
    return Paged(out, total, page, pages)


async def unsent_payments(session: AsyncSession, page: int = 1, per_page: int = 25) -> Paged[UnsentPayment]:
    """Tranches paid in the ledger whose payment instruction is still in the outbox (the bank has
    not got them), longest waiting first. Those waiting for four eyes are finance's list
    (services/tranche_approvals.awaiting_approval), not repeated here."""
    query = (
        select(
            PaymentInstruction.project_id,
            Project.title,
            Tranche.stage_no,
            Tranche.tranche_no,
            PaymentInstruction.amount,
            PaymentInstruction.created_at,
        )
        .join(Project, Project.id == PaymentInstruction.project_id)
        .outerjoin(Tranche, Tranche.transaction_id == PaymentInstruction.transaction_id)
        .where(PaymentInstruction.status == PaymentStatus.PENDING.value, PaymentInstruction.kind == "pay")
        .order_by(PaymentInstruction.created_at, PaymentInstruction.key)
    )
    rows, total, page, pages = await _paged(session, query, page, per_page)
    out = [
        UnsentPayment(pid, title, stage_no, tranche_no, int(amount), _utc(since) or since)
        for pid, title, stage_no, tranche_no, amount, since in rows
    ]
    return Paged(out, total, page, pages)


@dataclass(frozen=True)
class RepairedRow:
    project_id: str
    released: int
    document_id: str


@dataclass(frozen=True)
class DriftRow:
    project_id: str
    kind: str
    problem: str


@dataclass(frozen=True)
class RepairRunView:
    ran_at: datetime
    ran_by: str
    released: int
    repaired: list[RepairedRow]
    drift: list[DriftRow]

    @property
    def project_ids(self) -> set[str]:
        return {r.project_id for r in self.repaired} | {d.project_id for d in self.drift}


async def last_repair(session: AsyncSession) -> RepairRunView | None:
    """The daily repair's latest recorded run (workflows/repair.py): what it put right and the
    drift it left for people."""
    run = await repair_runs.latest(session)
    if run is None:
        return None
    return RepairRunView(
        ran_at=_utc(run.ran_at) or run.ran_at,
        ran_by=run.ran_by,
        released=int(run.released),
        repaired=[RepairedRow(r["project_id"], int(r["released"]), r["document_id"]) for r in run.repaired],
        drift=[DriftRow(d["project_id"], d["kind"], d["problem"]) for d in run.drift],
    )
