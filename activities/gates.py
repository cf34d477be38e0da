"""Gate activities: open review tasks, record reviews and decisions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DatabaseActivities
from domain.command import Command
from domain.project import Decision, Recommendation, ReviewSubmission
from domain.statuses import GateStatus, StageStatus, TaskStatus
from gates.definitions import GateDefinition
from storage.audit import audit_effect
from storage.models import Gate, GateDecision, Project, Review, ReviewTask, Stage, utcnow

STAGE_STATUS_AFTER = {
    Decision.GO: StageStatus.PASSED,
    Decision.CONDITIONAL_GO: StageStatus.PASSED,
    Decision.KILL: StageStatus.STOPPED,
    Decision.HOLD: StageStatus.ON_HOLD,
    Decision.RECYCLE: StageStatus.RECYCLED,
}


def review_task_id(project_id: str, gate_no: int, reviewer: str) -> str:
    return f"{project_id}-g{gate_no}-{reviewer}"


class OpenGateInput(BaseModel):
    project_id: str
    definition: GateDefinition
    reviewers: list[str]
    opened_at: datetime


class OpenGateResult(BaseModel):
    task_ids: list[str]


class RecordReviewInput(BaseModel):
    project_id: str
    review: ReviewSubmission
    recommendation: Recommendation | None


class RecordDecisionInput(BaseModel):
    project_id: str
    gate_no: int
    decision: Decision
    decided_by: str
    justification: str
    recommendation: Recommendation | None
    decided_at: datetime
    trl: int
    round: int = 1
    terms: dict[str, object] | None = None
    command: Command | None = None  # the decision's command (its row is written once, by key)


class GateActivities(DatabaseActivities):
    @activity.defn
    async def open_gate(self, input: OpenGateInput) -> OpenGateResult:
        gate_no = input.definition.gate_no

        async def work(session: AsyncSession) -> OpenGateResult:
            if await session.get(Gate, (input.project_id, gate_no)) is None:
                session.add(
                    Gate(
                        project_id=input.project_id,
                        gate_no=gate_no,
                        status="open",
                        definition=input.definition.model_dump(mode="json"),
                        opened_at=input.opened_at,
                    )
                )
                await session.flush()
            ids = []
            for reviewer in input.reviewers:
                task_id = review_task_id(input.project_id, gate_no, reviewer)
                if await session.get(ReviewTask, task_id) is None:
                    session.add(
                        ReviewTask(
                            id=task_id,
                            project_id=input.project_id,
                            gate_no=gate_no,
                            reviewer=reviewer,
                            status="open",
                        )
                    )
                ids.append(task_id)
            return OpenGateResult(task_ids=ids)

        return await self.transact(work)

    @activity.defn
    async def record_review(self, input: RecordReviewInput) -> str:
        review = input.review
        task_id = review_task_id(input.project_id, review.gate_no, review.reviewer)

        async def work(session: AsyncSession) -> str:
            task = await session.get(ReviewTask, task_id)
            if task is None:
                raise RuntimeError(f"review task {task_id} does not exist")
            if await session.get(Review, task_id) is None:
                session.add(
                    Review(
                        task_id=task_id,
                        must_meet=review.must_meet,
                        scores=review.scores,
                        comment=review.comment,
                    )
                )
                task.status = TaskStatus.SUBMITTED
                task.closed_at = utcnow()
                await audit_effect(session, review.command, review.reviewer, "review_recorded", f"task:{task_id}")
            if input.recommendation is not None:
                gate = await session.get(Gate, (input.project_id, review.gate_no))
                if gate is not None:
                    gate.recommendation = input.recommendation.model_dump(mode="json")
            return task_id

        return await self.transact(work)

    @activity.defn
    async def record_decision(self, input: RecordDecisionInput) -> None:
        async def work(session: AsyncSession) -> None:
            if await session.get(GateDecision, (input.project_id, input.gate_no, input.round)) is not None:
                return
            session.add(
                GateDecision(
                    project_id=input.project_id,
                    gate_no=input.gate_no,
                    round=input.round,
                    terms=input.terms,
                    decision=input.decision.value,
                    decided_by=input.decided_by,
                    justification=input.justification,
                    recommendation=input.recommendation.model_dump(mode="json") if input.recommendation else None,
                    decided_at=input.decided_at,
                )
            )
            gate = await session.get(Gate, (input.project_id, input.gate_no))
            if gate is not None:
                gate.status = GateStatus.DECIDED
            stage = await session.get(Stage, (input.project_id, input.gate_no))
            if stage is not None:
                stage.status = STAGE_STATUS_AFTER[input.decision]
            project = await session.get(Project, input.project_id)
            if project is not None:
                project.current_trl = input.trl
            # Tasks of reviewers who never reviewed cannot stay open past a decision.
            for task in (
                await session.scalars(
                    select(ReviewTask).where(
                        ReviewTask.project_id == input.project_id,
                        ReviewTask.gate_no == input.gate_no,
                        ReviewTask.status.in_(("open", "invited", "accepted")),
                    )
                )
            ).all():
                task.status = TaskStatus.CANCELLED
                task.closed_at = utcnow()
            await audit_effect(
                session,
                input.command,
                input.decided_by,
                "decision_recorded",
                f"gate:{input.project_id}/{input.gate_no}",
                decision=input.decision.value,
            )

        await self.transact(work)
