"""Persistence for the gate review workflow: an append-only gate event log with its projections
(gates, review tasks, reviews, evidence), and notifications. Both are keyed for idempotency."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DatabaseActivities
from activities.documents import store_document
from activities.notices import store_notice
from domain.command import Command
from domain.statuses import GateStatus, TaskStatus
from storage.audit import audit_effect
from storage.models import Gate, GateEvent, Review, ReviewTask, utcnow


def round_task_id(project_id: str, gate_no: int, round_no: int, reviewer: str) -> str:
    return f"{project_id}-g{gate_no}-r{round_no}-{reviewer}"


class GateEventInput(BaseModel):
    key: str
    project_id: str
    gate_no: int
    round: int
    kind: str  # opened|evidence|invited|responded|reassigned|review|amended|deadline|closed
    actor: str
    at: datetime
    payload: dict[str, Any]
    command: Command | None = None  # the person's command this event carries out


class NotifyInput(BaseModel):
    key: str
    project_id: str
    recipient: str
    kind: str
    message: str
    at: datetime


OPEN_TASK_STATES = ("open", "invited", "accepted")


class GateReviewActivities(DatabaseActivities):
    @activity.defn
    async def record_gate_event(self, event: GateEventInput) -> bool:
        """Store the event once and bring the projections up to date. False for a repeat."""

        async def work(session: AsyncSession) -> bool:
            if await session.scalar(select(GateEvent.id).where(GateEvent.key == event.key)) is not None:
                return False
            session.add(
                GateEvent(
                    key=event.key,
                    project_id=event.project_id,
                    gate_no=event.gate_no,
                    round=event.round,
                    kind=event.kind,
                    actor=event.actor,
                    at=event.at,
                    payload=event.payload,
                )
            )
            await _project(session, event)
            target = f"gate:{event.project_id}/{event.gate_no}/r{event.round}"
            await audit_effect(session, event.command, event.actor, f"gate_{event.kind}", target)
            return True

        return await self.transact(work)

    @activity.defn
    async def notify(self, note: NotifyInput) -> bool:
        async def work(session: AsyncSession) -> bool:
            return await store_notice(
                session, note.key, note.project_id, note.recipient, note.kind, note.message, note.at
            )

        return await self.transact(work)


async def _task(session: AsyncSession, e: GateEventInput, reviewer: str) -> ReviewTask | None:
    return await session.get(ReviewTask, round_task_id(e.project_id, e.gate_no, e.round, reviewer))


def _new_task(e: GateEventInput, reviewer: str) -> ReviewTask:
    return ReviewTask(
        id=round_task_id(e.project_id, e.gate_no, e.round, reviewer),
        project_id=e.project_id,
        gate_no=e.gate_no,
        round=e.round,
        reviewer=reviewer,
        status="invited",
    )


async def _project(session: AsyncSession, e: GateEventInput) -> None:
    p = e.payload
    if e.kind == "opened":
        gate = await session.get(Gate, (e.project_id, e.gate_no))
        if gate is None:
            gate = Gate(project_id=e.project_id, gate_no=e.gate_no, opened_at=e.at, definition=p["definition"])
            session.add(gate)
        gate.status, gate.round, gate.workflow_id = GateStatus.OPEN, e.round, p["workflow_id"]
        gate.opened_at, gate.definition, gate.recommendation, gate.due_at = e.at, p["definition"], None, None
        for reviewer in p["panel"]:
            if await _task(session, e, reviewer) is None:
                session.add(_new_task(e, reviewer))
    elif e.kind == "evidence":
        content = json.dumps(p, indent=2, ensure_ascii=False)
        doc_id = f"{e.project_id}-g{e.gate_no}-r{e.round}-evidence"
        await store_document(session, doc_id, e.project_id, "gate_evidence", "evidence.json", content)
    elif e.kind in ("review_opened", "deadline"):
        gate = await session.get(Gate, (e.project_id, e.gate_no))
        if gate is not None:
            gate.due_at = datetime.fromisoformat(p["due_at"])
    elif e.kind == "invited":
        if await _task(session, e, p["reviewer"]) is None:
            session.add(_new_task(e, p["reviewer"]))
    elif e.kind == "responded":
        task = await _task(session, e, p["reviewer"])
        if task is not None:
            task.status = TaskStatus(p["status"])
            task.conflict_statement = p.get("statement", "")
            if p["status"] in ("declined", "recused"):
                task.closed_at = utcnow()
    elif e.kind == "reassigned":
        old = await _task(session, e, p["from_reviewer"])
        if old is not None:
            old.status, old.closed_at = TaskStatus.REASSIGNED, utcnow()
        if await _task(session, e, p["to_reviewer"]) is None:
            session.add(_new_task(e, p["to_reviewer"]))
    elif e.kind in ("review", "amended"):
        task = await _task(session, e, p["reviewer"])
        assert task is not None, "a review needs its task"
        review = await session.get(Review, task.id)
        if review is None:
            session.add(Review(task_id=task.id, must_meet=p["must_meet"], scores=p["scores"], comment=p["comment"]))
        else:
            review.must_meet, review.scores, review.comment = p["must_meet"], p["scores"], p["comment"]
            review.version += 1
            review.amended_at = e.at
        task.status, task.closed_at = TaskStatus.SUBMITTED, utcnow()
        if p.get("recommendation") is not None:
            gate = await session.get(Gate, (e.project_id, e.gate_no))
            if gate is not None:
                gate.recommendation = p["recommendation"]
    elif e.kind in ("closed", "cancelled"):
        gate = await session.get(Gate, (e.project_id, e.gate_no))
        if gate is not None:
            gate.status = GateStatus.DECIDED if e.kind == "closed" else GateStatus.CANCELLED
            if p.get("recommendation") is not None:
                gate.recommendation = p["recommendation"]
        open_tasks = await session.scalars(
            select(ReviewTask).where(
                ReviewTask.project_id == e.project_id,
                ReviewTask.gate_no == e.gate_no,
                ReviewTask.round == e.round,
                ReviewTask.status.in_(OPEN_TASK_STATES),
            )
        )
        for task in open_tasks.all():
            task.status, task.closed_at = TaskStatus.CANCELLED, utcnow()
