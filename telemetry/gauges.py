"""The API's database-derived gauges, read at each scrape in one read-only session (a handful of
COUNT/SUM queries), so a scrape right after an event shows it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import String, cast, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail import MailStatus
from domain.statuses import GateStatus, PaymentStatus, ProjectStatus, ReportStatus
from services.tranche_approvals import awaiting
from storage import fund_checks
from storage.models import (
    Gate,
    MailOutbox,
    Notification,
    PaymentInstruction,
    ProgressReport,
    Project,
    Tranche,
    TrancheApproval,
)
from telemetry.metrics import API_REGISTRY


class Waiting:
    """Why a due tranche is not paid yet (trlgate_tranches_waiting{reason})."""

    FOUR_EYES_REQUEST = "four_eyes_request"  # above the threshold, finance has not requested it
    FOUR_EYES_APPROVAL = "four_eyes_approval"  # requested, the second approver has not signed
    REPORT = "report"  # held until a past fiscal year's progress report is accepted
    ALL = (FOUR_EYES_REQUEST, FOUR_EYES_APPROVAL, REPORT)


_WAITING_STATUSES = (ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value)
_MAIL_BACKLOG = (MailStatus.PENDING.value, MailStatus.SENDING.value)


@dataclass
class Snapshot:
    gate_reviews_open: int = 0
    gate_reviews_overdue: int = 0
    tranches_paid: int = 0
    tranches_paid_yen: int = 0
    tranches_waiting: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Waiting.ALL, 0))
    projects: dict[str, int] = field(default_factory=lambda: dict.fromkeys([s.value for s in ProjectStatus], 0))
    outbox_backlog: dict[str, int] = field(default_factory=lambda: {"mail": 0, "payments": 0})
    outbox_oldest_age_seconds: dict[str, float] = field(default_factory=lambda: {"mail": 0.0, "payments": 0.0})
    ledger_invariant_violations: int = 0
    fund_check_last_run_timestamp_seconds: float = 0.0


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def read_snapshot(session: AsyncSession, now: datetime | None = None) -> Snapshot:
    now = now or datetime.now(UTC)
    snap = Snapshot()
    open_gate = Gate.status == GateStatus.OPEN.value
    snap.gate_reviews_open = int(await session.scalar(select(func.count()).where(open_gate)) or 0)
    snap.gate_reviews_overdue = int(await session.scalar(select(func.count()).where(open_gate, Gate.due_at < now)) or 0)
    paid = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Tranche.amount), 0)).where(
                Tranche.reversal_transaction_id.is_(None)
            )
        )
    ).one()
    snap.tranches_paid, snap.tranches_paid_yen = int(paid[0]), int(paid[1])
    for status, count in await session.execute(select(Project.status, func.count()).group_by(Project.status)):
        snap.projects[str(status)] = int(count)
    await _waiting(session, snap)
    for name, column, status_ok in (
        ("mail", MailOutbox.created_at, MailOutbox.status.in_(_MAIL_BACKLOG)),
        ("payments", PaymentInstruction.created_at, PaymentInstruction.status == PaymentStatus.PENDING.value),
    ):
        count, oldest = (await session.execute(select(func.count(), func.min(column)).where(status_ok))).one()
        snap.outbox_backlog[name] = int(count)
        snap.outbox_oldest_age_seconds[name] = (now - _aware(oldest)).total_seconds() if oldest else 0.0
    check = await fund_checks.latest(session)
    if check is not None:
        snap.ledger_invariant_violations = len(check.violations)
        snap.fund_check_last_run_timestamp_seconds = _aware(check.checked_at).timestamp()
    return snap


async def _waiting(session: AsyncSession, snap: Snapshot) -> None:
    """Due, unpaid tranches of a running project's current stage, by what holds them: for four
    eyes, finance's own rule (services/tranche_approvals.awaiting), split by whether the request
    is made; for reports, the projects reminded of a year whose report is not accepted."""
    rule = awaiting()
    waiting = rule.base.where(*rule.where).with_only_columns(TrancheApproval.project_id.is_not(None).label("requested"))
    rows = waiting.subquery()
    for is_requested, count in await session.execute(select(rows.c.requested, func.count()).group_by(rows.c.requested)):
        snap.tranches_waiting[Waiting.FOUR_EYES_APPROVAL if is_requested else Waiting.FOUR_EYES_REQUEST] = int(count)
    # A project's workflow holds one tranche at a time for missing reports and reminds about each
    # year it waits for; the year is in the reminder's business key (`...-report-FY<year>-reminder-<n>`).
    accepted = exists().where(
        ProgressReport.project_id == Notification.project_id,
        ProgressReport.status == ReportStatus.ACCEPTED.value,
        Notification.key.like(literal("%-report-FY") + cast(ProgressReport.fiscal_year, String) + "-reminder-%"),
    )
    held = (
        select(func.count(func.distinct(Notification.project_id)))
        .join(Project, Project.id == Notification.project_id)
        .where(Notification.kind == "report_overdue", Project.status.in_(_WAITING_STATUSES), ~accepted)
    )
    snap.tranches_waiting[Waiting.REPORT] = int(await session.scalar(held) or 0)


def families(snap: Snapshot) -> Iterator[Metric]:
    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, value=value)

    def labelled(name: str, doc: str, label: str, values: dict[str, int] | dict[str, float]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=[label])
        for key, value in sorted(values.items()):
            family.add_metric([key], value)
        return family

    yield gauge("trlgate_gate_reviews_open", "Gate review rounds open now", snap.gate_reviews_open)
    yield gauge(
        "trlgate_gate_reviews_overdue", "Open gate review rounds past their due date", snap.gate_reviews_overdue
    )
    yield gauge("trlgate_tranches_paid", "Tranches paid (all time, reversals excluded)", snap.tranches_paid)
    yield gauge(
        "trlgate_tranches_paid_yen", "Yen paid in tranches (all time, reversals excluded)", snap.tranches_paid_yen
    )
    yield labelled(
        "trlgate_tranches_waiting",
        "Due, unpaid tranches of running projects, by what holds them",
        "reason",
        snap.tranches_waiting,
    )
    yield labelled("trlgate_projects", "Projects by status", "status", snap.projects)
    yield gauge("trlgate_projects_on_hold", "Projects on hold", snap.projects[ProjectStatus.ON_HOLD.value])
    yield labelled("trlgate_outbox_backlog", "Outbox rows not yet delivered", "outbox", snap.outbox_backlog)
    yield labelled(
        "trlgate_outbox_oldest_age_seconds",
        "Age of the oldest undelivered outbox row (0: none)",
        "outbox",
        snap.outbox_oldest_age_seconds,
    )
    yield gauge(
        "trlgate_ledger_invariant_violations",
        "Ledger invariant violations found by the latest fund check",
        snap.ledger_invariant_violations,
    )
    yield gauge(
        "trlgate_fund_check_last_run_timestamp_seconds",
        "When the latest fund check ran (Unix time; 0: never)",
        snap.fund_check_last_run_timestamp_seconds,
    )


def gauge_families() -> list[Metric]:
    """The gauges' families (their names and types), with zero values."""
    return list(families(Snapshot()))


class SnapshotCollector:
    """Exposes one snapshot (a scrape registers one of these in a registry of its own)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        return families(self.snap)


def exposition(snap: Snapshot) -> bytes:
    """The API's whole scrape: its process-wide HTTP metrics and this snapshot's gauges."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(SnapshotCollector(snap))
    return generate_latest(API_REGISTRY) + generate_latest(scrape)
