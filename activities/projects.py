"""Project lifecycle activities: register, set the status, complete, close out."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.base import SYSTEM_ACTOR, DatabaseActivities
from activities.documents import render, store_document
from activities.handoffs import liaisons_for
from activities.notices import role_members
from domain.command import Command
from domain.project import ProjectStatus
from domain.proposal import Proposal
from domain.roles import Role
from domain.statuses import GateStatus, HandoffStatus, StageStatus, TaskStatus
from domain.trl import NASA_TRL
from storage import ledger
from storage.audit import audit, audit_command, audit_effect
from storage.models import (
    Gate,
    Handoff,
    Notification,
    Project,
    Reservation,
    ReviewTask,
    Stage,
    utcnow,
)
from storage.projects import insert_project

CLOSEOUT_TEMPLATE = "closeout.v2.html.j2"  # v2: lessons learned


class RegisterProjectInput(BaseModel):
    programme_code: str
    workflow_id: str
    proposal: Proposal
    command: Command | None = None  # the start (the API writes the same row, keyed alike, if first)


class CompleteProjectInput(BaseModel):
    project_id: str
    trl: int
    public_use_achieved: bool | None = None
    command: Command | None = None  # the PM's conclusion of the hand-offs, if that ended them


class CloseOutInput(BaseModel):
    project_id: str
    reason: str
    trl: int
    stage_no: int
    lessons: str = ""


class SetStatusInput(BaseModel):
    project_id: str
    status: ProjectStatus
    reason: str
    command: Command | None = None  # the PM's resume, when this write ends a hold


class CloseOutResult(BaseModel):
    document_id: str
    tasks_cancelled: int
    handoffs_cancelled: int


async def _money(session: AsyncSession, project_id: str) -> tuple[int, int]:
    """(paid, released) for the project, from its tranches and reservations."""
    paid = await ledger.balance(session, ledger.paid_account(project_id))  # net of reversals
    released = await session.scalar(
        select(func.coalesce(func.sum(Reservation.released), 0)).where(Reservation.project_id == project_id)
    )
    return int(paid or 0), int(released or 0)


async def _notify_stop(
    session: AsyncSession,
    project: Project,
    reason: str,
    paid: int,
    released: int,
    document_id: str,
) -> None:
    """Everyone taking part hears of the stop through the notifications outbox, once each (keyed
    by project and recipient, so a retried close-out adds nothing)."""
    recipients = {project.programme_manager, *project.reviewers, *await role_members(session, project, Role.FINANCE)}
    if project.performer:
        recipients.add(project.performer)
    waiting = await session.scalars(  # hand-offs the stop withdrew (this close-out or the hand-off itself)
        select(Handoff.ministry).where(Handoff.project_id == project.id, Handoff.status.in_(("pending", "cancelled")))
    )
    for ministry in set(waiting.all()):
        recipients.update(await liaisons_for(session, project, ministry))
    message = (
        f"{project.id} has stopped: {reason}. Paid {paid:,} yen; released {released:,} yen to the fund. "
        f"Close-out report: {document_id}."
    )
    now = utcnow()
    for recipient in sorted(recipients):
        key = f"{project.id}-stopped-{recipient}"
        if await session.get(Notification, key) is None:
            session.add(
                Notification(
                    key=key, project_id=project.id, recipient=recipient, kind="project_stopped", message=message, at=now
                )
            )


class ProjectActivities(DatabaseActivities):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], programme_code: str) -> None:
        super().__init__(sessionmaker)
        self.programme_code = programme_code

    @activity.defn
    async def register_project(self, input: RegisterProjectInput) -> None:
        proposal = input.proposal
        assert proposal.project_id is not None

        async def work(session: AsyncSession) -> None:
            if await insert_project(session, input.programme_code, input.workflow_id, proposal):
                await audit_effect(
                    session,
                    input.command,
                    proposal.programme_manager,
                    "project_registered",
                    f"project:{proposal.project_id}",
                )

        await self.transact(work)

    @activity.defn
    async def set_status(self, input: SetStatusInput) -> None:
        """Hold and resume: the project's status while it lives (final statuses have their own)."""

        async def work(session: AsyncSession) -> None:
            project = await session.get(Project, input.project_id)
            assert project is not None
            if project.status != input.status.value:
                project.status = input.status
                audit(
                    session, SYSTEM_ACTOR, f"project_{input.status.value}", f"project:{project.id}", reason=input.reason
                )
            await audit_command(session, input.command)

        await self.transact(work)

    @activity.defn
    async def complete_project(self, input: CompleteProjectInput) -> None:
        async def work(session: AsyncSession) -> None:
            project = await session.get(Project, input.project_id)
            assert project is not None
            # A closed project holds no open reservation: whatever a completed project did not
            # spend (a recycle's budget, a reversed payment) goes back to its ministry.
            released = await ledger.release_open(session, project_id=project.id)
            if released:
                audit(session, SYSTEM_ACTOR, "release_reservations", f"project:{project.id}", amount=released)
            if project.status != ProjectStatus.COMPLETED.value:
                project.status = ProjectStatus.COMPLETED
                project.current_trl = input.trl
                project.public_use_achieved = input.public_use_achieved
                project.closed_at = utcnow()
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "project_completed",
                    f"project:{project.id}",
                    trl=input.trl,
                    public_use_achieved=input.public_use_achieved,
                )
            await audit_command(session, input.command)

        await self.transact(work)

    @activity.defn
    async def close_out(self, input: CloseOutInput) -> CloseOutResult:
        """The end of a stopped project: nothing left open, a close-out report rendered, status set.

        Money is released by its own activity first, so the report states final figures.
        """

        async def work(session: AsyncSession) -> CloseOutResult:
            # Locked: two repairs (workflows/repair.py) may close out one project at once, and the
            # second must find the first's close-out, not write its own beside it.
            project = await session.get(Project, input.project_id, with_for_update=True)
            assert project is not None
            now = utcnow()
            tasks = (
                await session.scalars(
                    select(ReviewTask).where(
                        ReviewTask.project_id == project.id, ReviewTask.status.in_(("open", "invited", "accepted"))
                    )
                )
            ).all()
            for task in tasks:
                task.status = TaskStatus.CANCELLED
                task.closed_at = now
            for gate in (
                await session.scalars(select(Gate).where(Gate.project_id == project.id, Gate.status == "open"))
            ).all():
                gate.status = GateStatus.CANCELLED
            handoffs = (
                await session.scalars(
                    select(Handoff).where(Handoff.project_id == project.id, Handoff.status == "pending")
                )
            ).all()
            for h in handoffs:
                h.status = HandoffStatus.CANCELLED
                h.resolved_at = now
            for stage in (
                await session.scalars(select(Stage).where(Stage.project_id == project.id, Stage.status == "active"))
            ).all():
                stage.status = StageStatus.STOPPED
            stages = (
                await session.scalars(select(Stage).where(Stage.project_id == project.id).order_by(Stage.stage_no))
            ).all()
            paid, released = await _money(session, project.id)
            content = render(
                CLOSEOUT_TEMPLATE,
                project=project,
                stages=stages,
                reason=input.reason,
                trl=input.trl,
                trl_text=NASA_TRL[input.trl],
                paid=paid,
                released=released,
                stopped_in_stage=input.stage_no,
                lessons=input.lessons,
            )
            doc = await store_document(
                session, f"{project.id}-closeout", project.id, "closeout", CLOSEOUT_TEMPLATE, content
            )
            await _notify_stop(session, project, input.reason, paid, released, doc.id)
            if project.status != ProjectStatus.TERMINATED.value:
                project.status = ProjectStatus.TERMINATED
                project.stop_reason = input.reason
                project.lessons = input.lessons
                project.closed_at = utcnow()
                project.current_trl = input.trl
                audit(session, SYSTEM_ACTOR, "project_closed_out", f"project:{project.id}", reason=input.reason)
            return CloseOutResult(document_id=doc.id, tasks_cancelled=len(tasks), handoffs_cancelled=len(handoffs))

        return await self.transact(work)
