"""Persistence for the gate review workflow: an append-only gate event log with its projections
(gates, review tasks, reviews, evidence), and notifications. Both are keyed for idempotency."""

from __future__ import annotations

import json
from datetime import datetime
from typing import assert_never

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DatabaseActivities
from activities.documents import store_document
from activities.notices import store_notice
from domain.gate_review import (
    OPEN_TASKS,
    ConditionsVerified,
    DueDateSet,
    EvidenceSubmitted,
    GateEvent,
    GateOpened,
    GateStatus,
    InvitationAnswered,
    MemberStatus,
    ReviewerInvited,
    ReviewerReassigned,
    ReviewStored,
    RoundClosed,
    TaskStatus,
)
from domain.proposal import Classification
from storage.audit import audit_effect
from storage.db import dialect_insert
from storage.models import Gate, Project, Review, ReviewTask, utcnow
from storage.models import GateEvent as GateEventRow


def round_task_id(project_id: str, gate_no: int, round_no: int, reviewer: str) -> str:
    return f"{project_id}-g{gate_no}-r{round_no}-{reviewer}"


class NotifyInput(BaseModel):
    key: str
    project_id: str
    recipient: str
    kind: str
    message: str
    at: datetime


class GateReviewActivities(DatabaseActivities):
    @activity.defn
    async def record_gate_event(self, event: GateEvent) -> bool:
        """Store the event once and bring the projections up to date. False for a repeat."""

        async def work(session: AsyncSession) -> bool:
            # The log's row, unless this event's key is in already (a repeat): one statement.
            row = (
                dialect_insert(session)(GateEventRow)
                .values(
                    key=event.key,
                    project_id=event.project_id,
                    gate_no=event.gate_no,
                    round=event.round,
                    kind=event.kind.value,
                    actor=event.actor,
                    at=event.at,
                    payload=event.payload(),
                )
                .on_conflict_do_nothing(index_elements=[GateEventRow.key])
                .returning(GateEventRow.id)
            )
            if await session.scalar(row) is None:
                return False
            await _project(session, event)
            target = f"gate:{event.project_id}/{event.gate_no}/r{event.round}"
            await audit_effect(session, event.command, event.actor, f"gate_{event.kind.value}", target)
            return True

        return await self.transact(work)

    @activity.defn
    async def notify(self, note: NotifyInput) -> bool:
        async def work(session: AsyncSession) -> bool:
            return await store_notice(
                session, note.key, note.project_id, note.recipient, note.kind, note.message, note.at
            )

        return await self.transact(work)


async def _task(session: AsyncSession, e: GateEvent, reviewer: str) -> ReviewTask | None:
    return await session.get(ReviewTask, round_task_id(e.project_id, e.gate_no, e.round, reviewer))


async def _add_task(session: AsyncSession, e: GateEvent, reviewer: str) -> None:
    if await _task(session, e, reviewer) is None:
        task_id = round_task_id(e.project_id, e.gate_no, e.round, reviewer)
        session.add(
            ReviewTask(
                id=task_id,
                project_id=e.project_id,
                gate_no=e.gate_no,
                round=e.round,
                reviewer=reviewer,
                status=TaskStatus.INVITED,
            )
        )
        # Asked to act: the reviewer hears of it in the same transaction as the task appears.
        project = await session.get(Project, e.project_id)
        await store_notice(
            session,
            f"{task_id}-invited",
            e.project_id,
            reviewer,
            "invitation",
            f"You are invited to review gate {e.gate_no} (round {e.round}) of {_named(project, e.project_id)}",
            e.at,
        )


async def _gate(session: AsyncSession, e: GateEvent) -> Gate | None:
    return await session.get(Gate, (e.project_id, e.gate_no))


async def _project(session: AsyncSession, e: GateEvent) -> None:
    match e:
        case GateOpened():
            await _open_round(session, e)
        case EvidenceSubmitted():
            content = json.dumps(e.payload(), indent=2, ensure_ascii=False)
            doc_id = f"{e.project_id}-g{e.gate_no}-r{e.round}-evidence"
            await store_document(session, doc_id, e.project_id, "gate_evidence", "evidence.json", content)
        case DueDateSet():
            if (gate := await _gate(session, e)) is not None:
                gate.due_at = e.due_at
        case ReviewerInvited():
            await _add_task(session, e, e.reviewer)
        case InvitationAnswered():
            if (task := await _task(session, e, e.reviewer)) is not None:
                task.status = TaskStatus(e.status.value)
                task.conflict_statement = e.statement
                if e.status in (MemberStatus.DECLINED, MemberStatus.RECUSED):
                    task.closed_at = utcnow()
        case ReviewerReassigned():
            if (old := await _task(session, e, e.from_reviewer)) is not None:
                old.status, old.closed_at = TaskStatus.REASSIGNED, utcnow()
            await _add_task(session, e, e.to_reviewer)
        case ReviewStored():
            await _store_review(session, e)
        case RoundClosed():
            await _close_round(session, e)
        case ConditionsVerified():
            pass  # the log entry (and its audit) is the record: no projection to update
        case _:
            assert_never(e)


async def _open_round(session: AsyncSession, e: GateOpened) -> None:
    definition = e.definition.model_dump(mode="json")
    gate = await _gate(session, e)
    if gate is None:
        gate = Gate(project_id=e.project_id, gate_no=e.gate_no, opened_at=e.at, definition=definition)
        session.add(gate)
    gate.status, gate.round, gate.workflow_id = GateStatus.OPEN, e.round, e.workflow_id
    gate.opened_at, gate.definition, gate.recommendation, gate.due_at = e.at, definition, None, None
    for reviewer in e.panel:
        await _add_task(session, e, reviewer)


async def _store_review(session: AsyncSession, e: ReviewStored) -> None:
    """The hottest write of a deadline (every reviewer at once): Core statements, no ORM loads.
    The task is marked submitted, the review inserted or, amended, overwritten with its version
    counted up, the gate's recommendation replaced: three statements, then `_panel_complete`."""
    r = e.review
    task_id = round_task_id(e.project_id, e.gate_no, e.round, r.reviewer)
    submitted = await session.scalar(
        update(ReviewTask)
        .where(ReviewTask.id == task_id)
        .values(status=TaskStatus.SUBMITTED, closed_at=utcnow())
        .returning(ReviewTask.id)
    )
    assert submitted is not None, "a review needs its task"
    review = dialect_insert(session)(Review).values(
        task_id=task_id, must_meet=r.must_meet, scores=r.scores, comment=r.comment
    )
    await session.execute(
        review.on_conflict_do_update(
            index_elements=[Review.task_id],
            set_={
                "must_meet": review.excluded.must_meet,
                "scores": review.excluded.scores,
                "comment": review.excluded.comment,
                "version": Review.version + 1,
                "amended_at": e.at,
            },
        )
    )
    if e.recommendation is not None:
        recommendation = e.recommendation.model_dump(mode="json")
        await session.execute(
            update(Gate)
            .where(Gate.project_id == e.project_id, Gate.gate_no == e.gate_no)
            .values(recommendation=recommendation)
        )
    await _panel_complete(session, e)


def _named(project: Project | None, project_id: str) -> str:
    """How a notice names its project: a closed one only by its id (a notice outlives a grant)."""
    if project is None or project.classification == Classification.CLOSED.value:
        return f"project {project_id}"
    return project.title


async def _panel_complete(session: AsyncSession, e: ReviewStored) -> None:
    """Once no task of the round waits for its reviewer, the decision is the PM's: tell them (once)."""
    await session.flush()
    waiting = await session.scalar(
        select(func.count())
        .select_from(ReviewTask)
        .where(
            ReviewTask.project_id == e.project_id,
            ReviewTask.gate_no == e.gate_no,
            ReviewTask.round == e.round,
            ReviewTask.status.in_([s.value for s in OPEN_TASKS]),
        )
    )
    if waiting:
        return
    project = await session.get(Project, e.project_id)
    if project is None:
        return
    await store_notice(
        session,
        f"{e.project_id}-g{e.gate_no}-r{e.round}-panel-complete",
        e.project_id,
        project.programme_manager,
        "panel_complete",
        f"Every review of gate {e.gate_no} (round {e.round}) of {_named(project, e.project_id)} is in: "
        "the decision is yours",
        e.at,
    )


async def _close_round(session: AsyncSession, e: RoundClosed) -> None:
    if (gate := await _gate(session, e)) is not None:
        gate.status = GateStatus.DECIDED
        gate.recommendation = e.recommendation.model_dump(mode="json")
    open_tasks = await session.scalars(
        select(ReviewTask).where(
            ReviewTask.project_id == e.project_id,
            ReviewTask.gate_no == e.gate_no,
            ReviewTask.round == e.round,
            ReviewTask.status.in_([s.value for s in OPEN_TASKS]),
        )
    )
    for task in open_tasks.all():
        task.status, task.closed_at = TaskStatus.CANCELLED, utcnow()
