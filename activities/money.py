"""Money activities: reserve a stage's budget, pay a tranche, release what is unpaid, and record
the conditions a tranche waits for (progress reports, four-eyes signatures)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities import failpoints
from activities.base import SYSTEM_ACTOR, DatabaseActivities
from domain.command import Command
from domain.statuses import ReportStatus, StageStatus
from storage import ledger
from storage.audit import audit, audit_command, audit_effect
from storage.models import ProgressReport, Project, Reservation, Stage, TrancheApproval


class ScheduledTranche(BaseModel):
    tranche_no: int
    fiscal_year: int
    amount: int


class ReserveStageInput(BaseModel):
    programme_code: str
    project_id: str
    stage_no: int
    ministry: str
    amount: int
    part: int = 0
    schedule: list[ScheduledTranche] = []
    booked_on: date | None = None


class ReserveStageResult(BaseModel):
    amount: int
    created: bool


class PayTrancheInput(BaseModel):
    project_id: str
    stage_no: int
    tranche_no: int
    amount: int
    due_at: datetime
    part: int = 0
    paid_on: date | None = None


class PayTrancheResult(BaseModel):
    transaction_id: int
    amount: int
    created: bool


class ReleaseInput(BaseModel):
    project_id: str
    booked_on: date | None = None
    command: Command | None = None  # a person's stop (terminate, withdraw): audited with the release


class RecordReportInput(BaseModel):
    project_id: str
    fiscal_year: int
    status: str  # submitted|accepted|returned
    actor: str
    at: datetime
    summary: str = ""
    note: str = ""
    command: Command | None = None


class RecordSignatureInput(BaseModel):
    project_id: str
    stage_no: int
    tranche_no: int
    amount: int
    action: str  # request|approve
    signer: str
    at: datetime
    command: Command | None = None


class ReleaseResult(BaseModel):
    released: int


class MoneyActivities(DatabaseActivities):
    @activity.defn
    async def reserve_stage(self, input: ReserveStageInput) -> ReserveStageResult:
        async def work(session: AsyncSession) -> ReserveStageResult:
            view = await ledger.reserve(
                session,
                programme_code=input.programme_code,
                project_id=input.project_id,
                stage_no=input.stage_no,
                ministry=input.ministry,
                amount=input.amount,
                part=input.part,
                schedule=[ledger.ScheduledAmount(t.tranche_no, t.fiscal_year, t.amount) for t in input.schedule]
                or None,
                booked_on=input.booked_on,
            )
            stage = await session.get(Stage, (input.project_id, input.stage_no))
            project = await session.get(Project, input.project_id)
            if stage is not None and project is not None and view.created:
                stage.status = StageStatus.ACTIVE
                project.stage_no = input.stage_no
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "reserve_stage",
                    f"project:{input.project_id}",
                    stage_no=input.stage_no,
                    amount=input.amount,
                )
            return ReserveStageResult(amount=view.amount, created=view.created)

        return await self.transact(work)

    @activity.defn
    async def pay_tranche(self, input: PayTrancheInput) -> PayTrancheResult:
        async def work(session: AsyncSession) -> PayTrancheResult:
            view = await ledger.pay_tranche(
                session,
                project_id=input.project_id,
                stage_no=input.stage_no,
                tranche_no=input.tranche_no,
                amount=input.amount,
                due_at=input.due_at,
                part=input.part,
                paid_on=input.paid_on,
            )
            if view.created:
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "pay_tranche",
                    f"project:{input.project_id}",
                    stage_no=input.stage_no,
                    tranche_no=input.tranche_no,
                    amount=input.amount,
                )
            return PayTrancheResult(transaction_id=view.transaction_id, amount=view.amount, created=view.created)

        result = await self.transact(work)
        # The payment and its outbox instruction are committed; a crash here must lose neither.
        failpoints.hit("after_pay_commit")
        return result

    @activity.defn
    async def release_reservations(self, input: ReleaseInput) -> ReleaseResult:
        async def work(session: AsyncSession) -> ReleaseResult:
            released = await ledger.release_open(session, project_id=input.project_id, booked_on=input.booked_on)
            if released:
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "release_reservations",
                    f"project:{input.project_id}",
                    amount=released,
                )
            await audit_command(session, input.command, released=released)
            # What the project's reservations released in all: the same answer when a retry (after
            # a worker died past the commit) finds nothing left to release.
            total = await session.scalar(
                select(func.coalesce(func.sum(Reservation.released), 0)).where(
                    Reservation.project_id == input.project_id
                )
            )
            return ReleaseResult(released=int(total or 0))

        result = await self.transact(work)
        failpoints.hit("after_release_commit")  # the crash tests' cut: money back, stop unfinished
        return result

    @activity.defn
    async def record_report(self, input: RecordReportInput) -> None:
        """A progress report's submission or review, idempotent: the row carries the latest state."""

        async def work(session: AsyncSession) -> None:
            row = await session.get(ProgressReport, (input.project_id, input.fiscal_year))
            if input.status == "submitted":
                if row is None:
                    row = ProgressReport(project_id=input.project_id, fiscal_year=input.fiscal_year)
                    session.add(row)
                row.status, row.summary, row.submitted_by, row.submitted_at = (
                    ReportStatus.SUBMITTED,
                    input.summary,
                    input.actor,
                    input.at,
                )
                row.reviewed_by, row.reviewed_at, row.note = None, None, ""
            else:
                assert row is not None, "a report is reviewed after it is submitted"
                row.status, row.reviewed_by, row.reviewed_at, row.note = (
                    ReportStatus(input.status),
                    input.actor,
                    input.at,
                    input.note,
                )
            await audit_effect(
                session,
                input.command,
                input.actor,
                f"report_{input.status}",
                f"project:{input.project_id}",
                fiscal_year=input.fiscal_year,
            )

        await self.transact(work)

    @activity.defn
    async def record_signature(self, input: RecordSignatureInput) -> None:
        async def work(session: AsyncSession) -> None:
            key = (input.project_id, input.stage_no, input.tranche_no)
            row = await session.get(TrancheApproval, key)
            if row is None:
                row = TrancheApproval(
                    project_id=input.project_id,
                    stage_no=input.stage_no,
                    tranche_no=input.tranche_no,
                    amount=input.amount,
                    requested_by=input.signer,
                    requested_at=input.at,
                )
                session.add(row)
            if input.action == "approve":
                row.approved_by, row.approved_at = input.signer, input.at
            await audit_effect(
                session,
                input.command,
                input.signer,
                f"tranche_{input.action}",
                f"project:{input.project_id}",
                stage_no=input.stage_no,
                tranche_no=input.tranche_no,
                amount=input.amount,
            )

        await self.transact(work)
